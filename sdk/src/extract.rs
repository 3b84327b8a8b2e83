//! How a route handler's arguments are read: [`FromRequest`], the trait through which an
//! argument's type decides how it is read, and the extractors the SDK ships with it:
//! [`Option<T>`] (an absent parameter is `None`), [`Vec<T>`] (every value of a repeated
//! key), [`Params<T>`], [`Form<T>`], [`Json<T>`](crate::Json) (a whole struct) and the database
//! [`Cursor`]. Any other type is read as the parameter of the argument's name
//! ([`Request::param`]), as Odoo passes its keyword arguments. The request and its session
//! are taken by reference (`&mut Request`, `&Session`...), in any position.
//!
//! ```
//! use inphms_sdk::{route, Cursor, Form, Params, Request, Result, Session};
//! use serde::Deserialize;
//!
//! /// `GET /shop/7?tag=a&tag=b&page=2`: `id` from the path, `tag` every value of the
//! /// repeated key, `page` a parameter that may be absent, `limit` one with a default.
//! #[route("/shop/<int:id>", auth = "none")]
//! fn shop(
//!     id: i64,
//!     tag: Vec<String>,
//!     page: Option<u32>,
//!     #[param(default = 20)] limit: u32,
//!     req: &mut Request,
//! ) -> String {
//!     format!("{id} {tag:?} {page:?} {limit} {}", req.method())
//! }
//!
//! #[derive(Deserialize)]
//! struct Search {
//!     q: String,
//!     page: Option<u32>,
//! }
//!
//! /// The whole parameters as one struct, the session by reference.
//! #[route("/shop/search", type = "json", auth = "none")]
//! fn search(session: &Session, search: Params<Search>) -> String {
//!     format!("{} {:?} {:?}", search.q, search.page, session.uid())
//! }
//!
//! /// A posted form as one struct, and the request's cursor.
//! #[route("/shop/order", methods = ["POST"], auth = "none")]
//! fn order(Form(search): Form<Search>, cr: Cursor) -> Result<String> {
//!     let _ = (search, cr);
//!     Ok("ok".into())
//! }
//! # fn main() {}
//! ```
//!
//! The macro checks the path against the arguments when the addon is built: a placeholder
//! without an argument of its name, an unknown converter or an `<int:...>` given to a
//! non-integer type does not compile.

use crate::{Cursor, Error, Request, Result};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};

/// A handler argument read by its type (the `name` is the argument's own, for the types
/// that read the parameter of that name).
///
/// Implement it for your own extractors:
///
/// ```
/// use inphms_sdk::{route, Error, FromRequest, Request, Result};
///
/// /// The `X-Api-Key` header, required.
/// struct ApiKey(String);
///
/// impl FromRequest for ApiKey {
///     fn from_request(req: &Request<'_>, _name: &str) -> Result<Self> {
///         req.header("x-api-key")
///             .map(|k| ApiKey(k.to_owned()))
///             .ok_or_else(|| Error::access("an API key is required"))
///     }
/// }
///
/// #[route("/api/ping", auth = "none")]
/// fn ping(key: ApiKey) -> String {
///     format!("pong {}", key.0.len())
/// }
/// # fn main() {}
/// ```
pub trait FromRequest: Sized {
    /// Reads the argument `name` from `req`; an error is the request's answer (a
    /// [`Error::bad_request`] for a malformed parameter).
    fn from_request(req: &Request<'_>, name: &str) -> Result<Self>;
}

/// A parameter that may be absent (or JSON `null`): `None` then.
impl<T: DeserializeOwned> FromRequest for Option<T> {
    fn from_request(req: &Request<'_>, name: &str) -> Result<Self> {
        req.param_opt(name)
    }
}

/// Every value of a repeated key (`?tag=a&tag=b`, in the query then the form), or the
/// JSON array a json route's parameter holds; empty when the key is absent.
impl<T: DeserializeOwned> FromRequest for Vec<T> {
    fn from_request(req: &Request<'_>, name: &str) -> Result<Self> {
        req.param_all(name)
    }
}

/// The request's database cursor ([`Request::cursor`]).
impl FromRequest for Cursor {
    fn from_request(req: &Request<'_>, _name: &str) -> Result<Self> {
        req.cursor()
    }
}

/// All the handler's parameters (URL arguments, query and form fields, or a json route's
/// `params`) as one struct. Text values of an http request are read as the numbers or
/// booleans they spell when a field wants one.
///
/// ```
/// use inphms_sdk::{route, Params};
/// #[derive(serde::Deserialize)]
/// struct Page { id: i64, size: Option<u32> }
///
/// #[route("/page/<int:id>", auth = "none")]
/// fn page(p: Params<Page>) -> String {
///     format!("{} {:?}", p.id, p.size)
/// }
/// # fn main() {}
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Params<T>(pub T);

impl<T: DeserializeOwned> FromRequest for Params<T> {
    fn from_request(req: &Request<'_>, _name: &str) -> Result<Self> {
        struct_from_map(req.try_params()?, "parameters").map(Params)
    }
}

/// The body's form fields (`application/x-www-form-urlencoded`, or the text fields of a
/// `multipart/form-data` body) as one struct; a repeated field is a list. Text is read as
/// the number or boolean it spells when a field wants one.
///
/// ```
/// use inphms_sdk::{route, Form};
/// #[derive(serde::Deserialize)]
/// struct Login { login: String, remember: Option<bool> }
///
/// #[route("/my/login", methods = ["POST"], auth = "none", csrf = false)]
/// fn login(Form(form): Form<Login>) -> String {
///     format!("{} {:?}", form.login, form.remember)
/// }
/// # fn main() {}
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Form<T>(pub T);

impl<T: DeserializeOwned> FromRequest for Form<T> {
    fn from_request(req: &Request<'_>, _name: &str) -> Result<Self> {
        let mut map = Map::new();
        for (key, value) in req.form() {
            match map.get_mut(&key) {
                None => {
                    map.insert(key, Value::String(value));
                }
                Some(Value::Array(list)) => list.push(Value::String(value)),
                Some(first) => {
                    let first = first.take();
                    map.insert(key, Value::Array(vec![first, Value::String(value)]));
                }
            }
        }
        struct_from_map(&map, "form").map(Form)
    }
}

/// The body parsed as JSON into `T` (a http route receiving a JSON document; a json
/// route's arguments are its `params`: take them with [`Params`]). An invalid body is a
/// [`Error::bad_request`].
///
/// ```
/// use inphms_sdk::{route, Json};
/// #[derive(serde::Deserialize)]
/// struct Event { kind: String }
///
/// #[route("/hook", methods = ["POST"], auth = "none", csrf = false)]
/// fn hook(Json(event): Json<Event>) -> String {
///     event.kind
/// }
/// # fn main() {}
/// ```
impl<T: DeserializeOwned> FromRequest for crate::Json<T> {
    fn from_request(req: &Request<'_>, _name: &str) -> Result<Self> {
        serde_json::from_slice(req.body())
            .map(crate::Json)
            .map_err(|e| Error::bad_request(format!("invalid JSON body: {e}")))
    }
}

macro_rules! deref {
    ($($t:ident),*) => {$(
        impl<T> Deref for $t<T> {
            type Target = T;
            fn deref(&self) -> &T {
                &self.0
            }
        }
        impl<T> DerefMut for $t<T> {
            fn deref_mut(&mut self) -> &mut T {
                &mut self.0
            }
        }
    )*};
}
deref!(Params, Form);

/// `map` as a `T`; when it does not fit, again with its text values read as the numbers
/// or booleans they spell (http parameters are text). The first reason is the error.
fn struct_from_map<T: DeserializeOwned>(map: &Map<String, Value>, what: &str) -> Result<T> {
    let first = match serde_json::from_value(Value::Object(map.clone())) {
        Ok(v) => return Ok(v),
        Err(e) => e,
    };
    let spelled: Map<String, Value> = map.iter().map(|(k, v)| (k.clone(), spelled(v))).collect();
    serde_json::from_value(Value::Object(spelled))
        .map_err(|_| Error::bad_request(format!("invalid {what}: {first}")))
}

/// A text value that spells a number or a boolean as that value (lists: each item).
fn spelled(v: &Value) -> Value {
    match v {
        Value::String(s) => match serde_json::from_str::<Value>(s) {
            Ok(n @ (Value::Number(_) | Value::Bool(_))) => n,
            _ => v.clone(),
        },
        Value::Array(items) => Value::Array(items.iter().map(spelled).collect()),
        _ => v.clone(),
    }
}

/// The parameter `name`'s `value` as a `T` (text is also tried as the JSON it spells, as
/// http parameters arrive as text), or a [`Error::bad_request`] naming it.
pub(crate) fn from_param_value<T: DeserializeOwned>(name: &str, value: &Value) -> Result<T> {
    let invalid = |e: serde_json::Error| {
        Error::bad_request(format!("invalid value for parameter '{name}': {e}"))
    };
    serde_json::from_value(value.clone()).or_else(|e| match value {
        Value::String(s) => match serde_json::from_str(s) {
            Ok(v) => Ok(v),
            // A text that is JSON of the wrong range or type says so; other text keeps
            // the first reason (e.g. "expected i64" for `abc`).
            Err(text_error) if serde_json::from_str::<Value>(s).is_ok() => Err(invalid(text_error)),
            Err(_) => Err(invalid(e)),
        },
        _ => Err(invalid(e)),
    })
}

impl Request<'_> {
    /// One parameter converted to `T`, `None` when absent or `null`; a present value that
    /// does not convert is a [`Error::bad_request`] naming it.
    ///
    /// ```
    /// # use inphms_sdk::Request;
    /// let req = Request::default();
    /// assert_eq!(req.param_opt::<i64>("page").unwrap(), None);
    /// ```
    pub fn param_opt<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>> {
        match self.try_params()?.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => from_param_value(name, value).map(Some),
        }
    }

    /// Every value of the parameter `name`: each value of a repeated key of the query
    /// string then of the form (urlencoded or multipart text fields), else the parameter
    /// itself (a JSON array's items, or one value); empty when absent.
    ///
    /// ```
    /// # use inphms_sdk::Request;
    /// let req = Request::default();
    /// assert!(req.param_all::<String>("tag").unwrap().is_empty());
    /// ```
    pub fn param_all<T: DeserializeOwned>(&self, name: &str) -> Result<Vec<T>> {
        let params = self.try_params()?;
        let texts: Vec<String> = form_urlencoded::parse(self.query_string().as_bytes())
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
            .chain(
                self.form()
                    .into_iter()
                    .filter(|(k, _)| k == name)
                    .map(|(_, v)| v),
            )
            .collect();
        if texts.is_empty() {
            return match params.get(name) {
                None | Some(Value::Null) => Ok(Vec::new()),
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|item| from_param_value(name, item))
                    .collect(),
                Some(one) => Ok(vec![from_param_value(name, one)?]),
            };
        }
        texts
            .into_iter()
            .map(|text| from_param_value(name, &Value::String(text)))
            .collect()
    }
}

/// The macro's probe of one argument: [`FromRequest`] when the type implements it, else
/// the parameter of the argument's name (autoref: the first applicable method wins).
#[doc(hidden)]
pub struct Extract<T>(PhantomData<fn() -> T>);

impl<T> Extract<T> {
    #[doc(hidden)]
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        Extract(PhantomData)
    }
}

/// An argument whose type implements [`FromRequest`].
#[doc(hidden)]
pub trait ByType<T> {
    fn extract(&self, req: &Request<'_>, name: &str) -> Result<T>;
}

impl<T: FromRequest> ByType<T> for Extract<T> {
    fn extract(&self, req: &Request<'_>, name: &str) -> Result<T> {
        T::from_request(req, name)
    }
}

/// Any other argument: the parameter of its name.
#[doc(hidden)]
pub trait ByName<T> {
    fn extract(&self, req: &Request<'_>, name: &str) -> Result<T>;
}

impl<T: DeserializeOwned> ByName<T> for &Extract<T> {
    fn extract(&self, req: &Request<'_>, name: &str) -> Result<T> {
        req.param(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::{HeaderRef, HttpRequest};
    use abi_stable::std_types::Tuple2;

    fn request<'a>(
        params: &'a str,
        query: &'a str,
        headers: &'a [HeaderRef<'a>],
        body: &'a [u8],
    ) -> Request<'a> {
        Request::from_abi(HttpRequest {
            params: params.into(),
            query_string: query.into(),
            headers: headers.into(),
            body: body.into(),
            ..HttpRequest::default()
        })
    }

    #[test]
    fn repeated_keys_keep_every_value_in_order() {
        let headers = [Tuple2(
            "content-type".into(),
            "application/x-www-form-urlencoded".into(),
        )];
        let req = request(r#"{"tag": "a"}"#, "tag=a&x=1&tag=b", &headers, b"tag=c");
        assert_eq!(req.param_all::<String>("tag").unwrap(), ["a", "b", "c"]);
        assert_eq!(req.param_all::<i64>("x").unwrap(), [1]);
        assert!(req.param_all::<i64>("none").unwrap().is_empty());
        let err = req.param_all::<i64>("tag").unwrap_err();
        assert!(err.message().contains("parameter 'tag'"), "{err:?}");
    }

    #[test]
    fn json_arrays_and_single_values() {
        let req = request(r#"{"ids": [1, 2], "one": 3, "n": null}"#, "", &[], b"");
        assert_eq!(req.param_all::<i64>("ids").unwrap(), [1, 2]);
        assert_eq!(req.param_all::<i64>("one").unwrap(), [3]);
        assert_eq!(req.param_opt::<i64>("n").unwrap(), None);
        assert_eq!(req.param_opt::<i64>("one").unwrap(), Some(3));
        assert!(req.param_opt::<String>("one").is_err());
    }

    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct Page {
        id: i64,
        name: String,
        on: Option<bool>,
    }

    #[test]
    fn whole_structs_read_text_as_numbers_when_wanted() {
        let req = request(r#"{"id": "7", "name": "x", "on": "true"}"#, "", &[], b"");
        let Params(page) = Params::<Page>::from_request(&req, "p").unwrap();
        assert_eq!(
            page,
            Page {
                id: 7,
                name: "x".into(),
                on: Some(true)
            }
        );
        let req = request(r#"{"id": "x", "name": "x"}"#, "", &[], b"");
        let err = Params::<Page>::from_request(&req, "p").unwrap_err();
        assert!(err.message().starts_with("invalid parameters: "), "{err:?}");
    }

    #[test]
    fn a_form_with_a_repeated_field_is_a_list() {
        #[derive(serde::Deserialize, Debug)]
        struct F {
            tag: Vec<String>,
            n: u8,
        }
        let headers = [Tuple2(
            "content-type".into(),
            "application/x-www-form-urlencoded".into(),
        )];
        let req = request("", "", &headers, b"tag=a&n=3&tag=b");
        let Form(f) = Form::<F>::from_request(&req, "f").unwrap();
        assert_eq!((f.tag, f.n), (vec!["a".to_owned(), "b".to_owned()], 3));
        let err = crate::Json::<F>::from_request(&req, "j").unwrap_err();
        assert!(err.message().starts_with("invalid JSON body"), "{err:?}");
    }
}
