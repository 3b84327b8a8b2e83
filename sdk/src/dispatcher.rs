//! Dispatchers: new routing types served by addon code (Odoo's `Dispatcher` subclasses),
//! and [`Endpoint`], the handle through which a dispatcher calls the route's handler.

use crate::abi::EndpointRef;
use crate::{host, Error, Request, Response, Result};
use serde_json::Value;

/// A routing type handled by addon code.
///
/// The host routes the request, then asks the dispatcher of the route's type whether the
/// request suits it, and hands it the request and the route's [`Endpoint`].
///
/// ```
/// use inphms_sdk::{Dispatcher, Endpoint, EndpointResult, Request, Response, Result};
///
/// /// Answers `text/plain` with the endpoint's JSON result.
/// struct PlainDispatcher;
///
/// impl Dispatcher for PlainDispatcher {
///     const ROUTING_TYPE: &'static str = "plain";
///
///     fn is_compatible(req: &Request) -> bool {
///         req.method() == "GET"
///     }
///
///     fn dispatch(req: &mut Request, endpoint: Endpoint) -> Result<Response> {
///         match endpoint.call(req)? {
///             EndpointResult::Value(v) => Ok(Response::text(
///                 v.map(|v| v.to_string()).unwrap_or_default(),
///             )),
///             EndpointResult::Response(r) => Ok(r),
///         }
///     }
/// }
/// inphms_sdk::register_dispatcher!(PlainDispatcher);
/// ```
pub trait Dispatcher {
    /// The routing type (the `type` of the routes) this dispatcher serves.
    const ROUTING_TYPE: &'static str;
    /// Whether the request can be served by this dispatcher (e.g. its content type).
    fn is_compatible(req: &Request) -> bool;
    /// Serves the request: parse it, call the endpoint, shape the answer.
    fn dispatch(req: &mut Request, endpoint: Endpoint) -> Result<Response>;
}

/// Registers a [`Dispatcher`] with the host.
#[macro_export]
macro_rules! register_dispatcher {
    ($ty:ty) => {
        $crate::__private::inventory::submit! {
            $crate::__private::DispatcherEntry {
                routing_type: <$ty as $crate::Dispatcher>::ROUTING_TYPE,
                is_compatible: <$ty as $crate::Dispatcher>::is_compatible,
                dispatch: <$ty as $crate::Dispatcher>::dispatch,
            }
        }
    };
}

/// The handler of the route being dispatched (possibly in another addon).
#[derive(Debug, Clone, Copy)]
pub struct Endpoint {
    inner: EndpointRef,
}

/// What an endpoint returned.
#[derive(Debug, Clone)]
pub enum EndpointResult {
    /// A response (the handler built one).
    Response(Response),
    /// A value (`None`: the handler returned nothing).
    Value(Option<Value>),
}

impl Endpoint {
    pub(crate) fn new(inner: EndpointRef) -> Self {
        Endpoint { inner }
    }

    /// Calls the handler with `req` (its params are the handler's arguments). Session
    /// changes made by the handler are carried back into `req.session`.
    pub fn call(&self, req: &mut Request) -> Result<EndpointResult> {
        let outcome = req.with_abi(|abi| host::call_endpoint(self.inner, abi))?;
        // Headers the endpoint added for the final answer stay added.
        req.response_headers
            .extend_from_slice(outcome.headers.0.as_slice());
        if let Some(session) = outcome.session.as_ref().into_option() {
            let mut fresh = crate::Session::from_parts(
                req.session.id().to_owned().into(),
                session.to_string().into(),
            );
            fresh.touch();
            req.session = fresh;
        }
        if let Some(e) = outcome.error.as_ref().into_option() {
            return Err(Error::from_info(e));
        }
        if let Some(r) = outcome.response.into_option() {
            return Ok(EndpointResult::Response(Response::from_abi(r)));
        }
        let value = match outcome.value.into_option() {
            None => None,
            Some(text) => Some(
                serde_json::from_str(&text)
                    .map_err(|e| Error::internal(format!("endpoint returned bad JSON: {e}")))?,
            ),
        };
        Ok(EndpointResult::Value(value))
    }
}
