//! Attribute macros of `inphms-sdk`. Use them through `inphms_sdk::{route, command, cron,
//! post_load, addon}`; their documentation lives there.

mod handler;
mod path;

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{format_ident, quote};
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{Expr, ExprArray, ExprLit, Ident, ItemFn, Lit, LitStr, Token};

/// One `key = value` (or a bare value first) of an attribute's arguments.
struct Arg {
    key: Option<Ident>,
    value: Expr,
}

impl Parse for Arg {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        if (input.peek(Ident::peek_any)) && input.peek2(Token![=]) {
            let key = Ident::parse_any(input)?;
            input.parse::<Token![=]>()?;
            Ok(Arg {
                key: Some(key),
                value: input.parse()?,
            })
        } else {
            Ok(Arg {
                key: None,
                value: input.parse()?,
            })
        }
    }
}

struct Args(Vec<Arg>);

impl Parse for Args {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        Ok(Args(
            Punctuated::<Arg, Token![,]>::parse_terminated(input)?
                .into_iter()
                .collect(),
        ))
    }
}

fn lit_str(e: &Expr) -> syn::Result<LitStr> {
    match e {
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) => Ok(s.clone()),
        _ => Err(syn::Error::new_spanned(e, "expected a string literal")),
    }
}

fn lit_bool(e: &Expr) -> syn::Result<bool> {
    match e {
        Expr::Lit(ExprLit {
            lit: Lit::Bool(b), ..
        }) => Ok(b.value),
        _ => Err(syn::Error::new_spanned(e, "expected `true` or `false`")),
    }
}

fn str_list(e: &Expr) -> syn::Result<Vec<LitStr>> {
    match e {
        Expr::Array(ExprArray { elems, .. }) => elems.iter().map(lit_str).collect(),
        _ => Ok(vec![lit_str(e)?]),
    }
}

fn doc_first_line(f: &ItemFn) -> String {
    for attr in &f.attrs {
        if attr.path().is_ident("doc") {
            if let syn::Meta::NameValue(nv) = &attr.meta {
                if let Ok(s) = lit_str(&nv.value) {
                    let line = s.value().trim().to_owned();
                    if !line.is_empty() {
                        return line;
                    }
                }
            }
        }
    }
    String::new()
}

/// Declares a request handler.
///
/// `#[route("/path/<int:id>", type = "json", auth = "none", methods = ["POST"], cors = "*",
/// csrf = false, save_session = false, readonly = true, websocket = false,
/// blocking = false, max_content_length = 1048576)]`
///
/// `require_origin = true` (with `websocket = true`): the handshake must carry an `Origin`
/// header, else the host answers 400 `Empty or missing header(s): origin` before the 101,
/// as Odoo's bus does for `/websocket`.
///
/// `auth`: `"user"` (the default: a logged-in session whose token is valid), `"public"`
/// (anyone; the public user when nobody is logged in on a database), `"none"` (no user),
/// `"bearer"` (an API key in `Authorization: Bearer KEY`; the handler sees its user), or the
/// name of an auth method an addon registers with `#[auth_method("name")]` (the host
/// refuses the route at load when no loaded addon registers it).
///
/// **Overriding** (Odoo's controller inheritance, `super()`): a route whose path is served
/// by an addon this one depends on (directly or not) replaces it, as a subclass's route
/// method replaces its parent's. Say which addon's route it overrides with
/// `overrides = "web"`: the host then refuses it at load, with a line naming this addon
/// and the path, when that addon declares no such route or is not a dependency. The
/// handler calls the overridden one with `req.call_super()`. Overrides chain in
/// dependency order: the most derived one is served, and each `call_super` reaches the
/// next one up. Two addons that do not depend on each other declaring the same path and
/// method: the one loaded later is refused, with a line naming both.
#[proc_macro_attribute]
pub fn route(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand(route_impl(attr.into(), item))
}

fn expand(r: syn::Result<TokenStream2>) -> TokenStream {
    r.unwrap_or_else(syn::Error::into_compile_error).into()
}

fn route_impl(attr: TokenStream2, item: TokenStream) -> syn::Result<TokenStream2> {
    let mut f: ItemFn = syn::parse(item)?;
    let route = RouteArgs::parse(attr, &f)?;
    let (extract, call_args) = handler::arguments(&mut f, &route.paths)?;
    let wrapper = format_ident!("__inphms_route_{}", f.sig.ident);
    let asynchronous = f.sig.asyncness.is_some();
    if asynchronous && route.websocket {
        return Err(syn::Error::new_spanned(
            f.sig.asyncness,
            "a websocket route cannot be async: its handler hands the socket over and \
             returns; for callbacks that await, serve it with an AsyncWsHandler \
             (`req.websocket()?.serve_async(handler)`)",
        ));
    }
    let wrapper_fn = if asynchronous {
        async_route_wrapper(&f, &wrapper, &route.routing_type, &extract, &call_args)
    } else {
        route_wrapper(&f, &wrapper, &route.routing_type, &extract, &call_args)
    };
    let submit = route_descriptor(&route, &f.sig.ident, &wrapper, asynchronous);
    Ok(quote! {
        #f

        #wrapper_fn

        #submit
    })
}

/// The routing keys of `#[route(...)]`, with Odoo's defaults.
struct RouteArgs {
    paths: Vec<LitStr>,
    routing_type: LitStr,
    auth: LitStr,
    methods: Vec<LitStr>,
    cors: TokenStream2,
    csrf: bool,
    save_session: bool,
    readonly: TokenStream2,
    websocket: bool,
    blocking: bool,
    max_content_length: TokenStream2,
    overrides: LitStr,
    require_origin: bool,
}

impl RouteArgs {
    /// Parses the attribute's arguments of the handler `f`: an unknown key, a value of the
    /// wrong kind or no path at all is an error.
    fn parse(attr: TokenStream2, f: &ItemFn) -> syn::Result<Self> {
        let args: Args = syn::parse2(attr)?;
        let mut route = RouteArgs {
            paths: Vec::new(),
            routing_type: LitStr::new("http", Span::call_site()),
            auth: LitStr::new("user", Span::call_site()),
            methods: Vec::new(),
            cors: quote!(None),
            csrf: true,
            save_session: true,
            readonly: quote!(None),
            websocket: false,
            blocking: true,
            max_content_length: quote!(None),
            overrides: LitStr::new("", Span::call_site()),
            require_origin: false,
        };
        for arg in &args.0 {
            route.set(arg)?;
        }
        if route.require_origin && !route.websocket {
            return Err(syn::Error::new_spanned(
                &f.sig.ident,
                "require_origin applies to the handshake of a websocket route: add \
                 websocket = true",
            ));
        }
        if route.paths.is_empty() {
            return Err(syn::Error::new_spanned(
                &f.sig.ident,
                "a route needs at least one path, e.g. #[route(\"/hello\")]",
            ));
        }
        Ok(route)
    }

    /// Sets the key `arg` names (a bare value is a path).
    fn set(&mut self, arg: &Arg) -> syn::Result<()> {
        let Some(key) = &arg.key else {
            self.paths.extend(str_list(&arg.value)?);
            return Ok(());
        };
        match key.unraw().to_string().as_str() {
            "route" | "path" | "paths" => self.paths.extend(str_list(&arg.value)?),
            "type" => self.routing_type = lit_str(&arg.value)?,
            "auth" => {
                self.auth = lit_str(&arg.value)?;
                if !is_name(&self.auth.value()) {
                    return Err(syn::Error::new_spanned(
                        &arg.value,
                        "auth must be \"none\", \"public\", \"user\", \"bearer\" or the name \
                         of an auth method (letters, digits and `_`)",
                    ));
                }
            }
            "methods" | "method" => self.methods = str_list(&arg.value)?,
            "cors" => {
                let v = lit_str(&arg.value)?;
                self.cors = quote!(Some(#v));
            }
            "csrf" => self.csrf = lit_bool(&arg.value)?,
            "save_session" => self.save_session = lit_bool(&arg.value)?,
            "readonly" => {
                let v = lit_bool(&arg.value)?;
                self.readonly = quote!(Some(#v));
            }
            "websocket" => self.websocket = lit_bool(&arg.value)?,
            "require_origin" => self.require_origin = lit_bool(&arg.value)?,
            "blocking" => self.blocking = lit_bool(&arg.value)?,
            "max_content_length" => {
                let v = &arg.value;
                self.max_content_length = quote!(Some(#v));
            }
            "overrides" => {
                self.overrides = lit_str(&arg.value)?;
                if !is_name(&self.overrides.value()) {
                    return Err(syn::Error::new_spanned(
                        &arg.value,
                        "overrides names the addon whose route this one overrides, e.g. \
                         overrides = \"web\"",
                    ));
                }
            }
            other => {
                return Err(syn::Error::new_spanned(
                    key,
                    format!("unknown routing key `{other}`"),
                ))
            }
        }
        Ok(())
    }
}

/// The wrapper the host calls: extracts the parameters, calls the handler `f` and turns
/// its result into a reply of the routing type.
fn route_wrapper(
    f: &ItemFn,
    wrapper: &Ident,
    routing_type: &LitStr,
    extract: &[TokenStream2],
    call_args: &[TokenStream2],
) -> TokenStream2 {
    let name = &f.sig.ident;
    let reply = handler::reply(
        f,
        routing_type.value() == "http",
        quote!(#name(#(#call_args),*)),
    );
    quote! {
        #[doc(hidden)]
        #[allow(non_snake_case)]
        fn #wrapper(
            req: &mut ::inphms_sdk::Request,
        ) -> ::inphms_sdk::Result<::inphms_sdk::__private::Reply> {
            #(#extract)*
            #reply
        }
    }
}

/// The wrapper of an `async fn` handler: a future owning the request, which extracts the
/// parameters, awaits the handler `f` and turns its result into a reply, and gives the
/// request back with it (its session changes are read from it).
fn async_route_wrapper(
    f: &ItemFn,
    wrapper: &Ident,
    routing_type: &LitStr,
    extract: &[TokenStream2],
    call_args: &[TokenStream2],
) -> TokenStream2 {
    let name = &f.sig.ident;
    let reply = handler::reply(
        f,
        routing_type.value() == "http",
        quote!(#name(#(#call_args),*).await),
    );
    quote! {
        #[doc(hidden)]
        #[allow(non_snake_case)]
        fn #wrapper(
            mut req: ::inphms_sdk::Request<'static>,
        ) -> ::inphms_sdk::__private::AsyncReply {
            ::std::boxed::Box::pin(async move {
                let result: ::inphms_sdk::Result<::inphms_sdk::__private::Reply> = {
                    let req = &mut req;
                    async move {
                        #(#extract)*
                        #reply
                    }
                    .await
                };
                (result, req)
            })
        }
    }
}

/// The route's descriptor (its routing keys, endpoint name and wrapper), registered with
/// the SDK's registry.
fn route_descriptor(
    route: &RouteArgs,
    name: &Ident,
    wrapper: &Ident,
    asynchronous: bool,
) -> TokenStream2 {
    let RouteArgs {
        paths,
        routing_type,
        auth,
        methods,
        cors,
        csrf,
        save_session,
        readonly,
        websocket,
        blocking,
        max_content_length,
        overrides,
        require_origin,
    } = route;
    let endpoint = format!("{}", name);
    let (handler, async_handler) = if asynchronous {
        (
            quote!(::inphms_sdk::__private::async_only),
            quote!(::core::option::Option::Some(#wrapper)),
        )
    } else {
        (quote!(#wrapper), quote!(::core::option::Option::None))
    };
    submit(
        "Route",
        quote! {
            paths: &[#(#paths),*],
            routing_type: #routing_type,
            auth: #auth,
            methods: &[#(#methods),*],
            cors: #cors,
            csrf: #csrf,
            save_session: #save_session,
            readonly: #readonly,
            websocket: #websocket,
            blocking: #blocking,
            max_content_length: #max_content_length,
            endpoint: concat!(module_path!(), "::", #endpoint),
            handler: #handler,
            overrides: #overrides,
            require_origin: #require_origin,
            async_handler: #async_handler,
        },
    )
}

/// The registration of one item of the addon: an `inventory::submit!` of the SDK's
/// `__private::<kind>` built from `fields`, which the SDK's registry collects.
fn submit(kind: &str, fields: TokenStream2) -> TokenStream2 {
    let kind = Ident::new(kind, Span::call_site());
    quote! {
        ::inphms_sdk::__private::inventory::submit! {
            ::inphms_sdk::__private::#kind { #fields }
        }
    }
}

/// The function `f` followed by its registration as a `kind` item (`Command`, `Cron`,
/// `PostLoad`) of `fields` with `run: f`.
fn registered(f: &ItemFn, kind: &str, fields: TokenStream2) -> TokenStream2 {
    let run = &f.sig.ident;
    let submit = submit(kind, quote!(#fields run: #run));
    quote! {
        #f
        #submit
    }
}

/// The `name` of an item (a bare string first, or `name = "..."`, else the function's
/// name); `other` takes the item's other keys and says whether it knew the key.
fn named(
    f: &ItemFn,
    args: &Args,
    mut other: impl FnMut(&str, &Expr) -> syn::Result<bool>,
) -> syn::Result<String> {
    let mut name = f.sig.ident.unraw().to_string();
    for arg in &args.0 {
        match arg.key.as_ref().map(|k| k.to_string()).as_deref() {
            None | Some("name") => name = lit_str(&arg.value)?.value(),
            Some(key) => {
                if !other(key, &arg.value)? {
                    return Err(syn::Error::new_spanned(
                        &arg.value,
                        format!("unknown key `{key}`"),
                    ));
                }
            }
        }
    }
    Ok(name)
}

/// Declares a command of the `inphms-host` command line.
#[proc_macro_attribute]
pub fn command(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand(command_impl(attr.into(), item))
}

fn command_impl(attr: TokenStream2, item: TokenStream) -> syn::Result<TokenStream2> {
    let f: ItemFn = syn::parse(item)?;
    let args: Args = syn::parse2(attr)?;
    let mut help = doc_first_line(&f);
    let name = named(&f, &args, |key, value| match key {
        "help" => {
            help = lit_str(value)?.value();
            Ok(true)
        }
        _ => Ok(false),
    })?;
    let Some(ty) = clap_args_type(&f)? else {
        return Ok(registered(&f, "Command", quote!(name: #name, help: #help,)));
    };
    // A command taking a `clap::Parser` type: a wrapper parses the arguments first.
    let user = &f.sig.ident;
    let wrapper = Ident::new(&format!("__inphms_command_{}", user.unraw()), user.span());
    let submit = submit("Command", quote!(name: #name, help: #help, run: #wrapper));
    Ok(quote! {
        #f
        #[doc(hidden)]
        fn #wrapper(args: &[::std::string::String]) -> i32 {
            ::inphms_sdk::command::run::<#ty>(#name, #help, args, #user)
        }
        #submit
    })
}

/// The argument type of a command taking its arguments parsed (`fn(T) -> i32` with
/// `T: clap::Parser`); `None` for the raw form `fn(&[String]) -> i32`.
fn clap_args_type(f: &ItemFn) -> syn::Result<Option<syn::Type>> {
    let mut inputs = f.sig.inputs.iter();
    let (Some(first), None) = (inputs.next(), inputs.next()) else {
        return Err(syn::Error::new_spanned(
            &f.sig.inputs,
            "a command takes one argument: `&[String]` (the raw arguments) or a type \
             implementing `clap::Parser` (the parsed arguments)",
        ));
    };
    let syn::FnArg::Typed(arg) = first else {
        return Err(syn::Error::new_spanned(
            first,
            "a command is a free function",
        ));
    };
    let raw = match &*arg.ty {
        syn::Type::Reference(r) => match &*r.elem {
            syn::Type::Slice(s) => quote!(#s).to_string().replace(' ', "").ends_with("String]"),
            _ => false,
        },
        _ => false,
    };
    Ok((!raw).then(|| (*arg.ty).clone()))
}

/// Declares a cron handler: `#[cron("my_addon.cleanup")]` on a
/// `fn(&mut CronContext) -> Result<()>`; database jobs (`ir_cron.handler`) name it.
///
/// How often a run happens (see `inphms_sdk::CronContext`):
///
/// - **Exactly once**: the work a handler does through the job's cursor
///   (`CronContext::cursor`). The host locks the job, runs the handler in that same
///   transaction and writes the job's bookkeeping there too (next call, consumed triggers,
///   failure count, the run's start, end and outcome), then commits once: the work and the
///   record of the run commit together or not at all. A PostgreSQL stop, a crash or a lost
///   connection at any point either keeps both (the job is no longer due) or neither (the
///   job is still due, with nothing of the run kept, and runs again). A failed handler's
///   work is rolled back; its failure is recorded, and so is a COMMIT the server refuses
///   (a deferred constraint): the job is not run again and again without a trace.
/// - **Never two at once**: a run holds its job (the row lock of its transaction and an
///   advisory lock for the whole run) until it ends, across its handler's own commits; other
///   workers, other hosts and `inphms-host cron --run` skip a held job.
/// - **At least once**: anything else the handler does: a side effect outside PostgreSQL
///   (an e-mail, a file, an HTTP call), or a write through another connection. A run whose
///   commit is lost is run again, and repeats those effects: make them idempotent, or
///   record them through the job's cursor and check that record first.
/// - A handler that commits on its own (`Cursor::commit`) makes checkpoints: each commit
///   also records the run as started (the next call moved on), so committed work is never
///   run again, and the job stays held: a trigger the handler adds for its own job (more to
///   do) runs it once this run ends. Work after the last commit is lost if the run
///   cannot finish, and done at the next scheduled run. `Cursor::rollback` undoes the
///   handler's work since the run started or since its last commit, keeping the lock.
#[proc_macro_attribute]
pub fn cron(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand(cron_impl(attr.into(), item))
}

fn cron_impl(attr: TokenStream2, item: TokenStream) -> syn::Result<TokenStream2> {
    let f: ItemFn = syn::parse(item)?;
    let args: Args = syn::parse2(attr)?;
    let name = named(&f, &args, |_, _| Ok(false))?;
    Ok(registered(&f, "Cron", quote!(name: #name,)))
}

/// Declares an RPC method: `#[rpc(model = "res.partner", method = "search_read")]` on a
/// `fn(&mut RpcContext, Vec<Value>, Map<String, Value>) -> Result<Value>`, which
/// `object.execute_kw(db, uid, password, model, method, args, kwargs)` calls.
#[proc_macro_attribute]
pub fn rpc(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand(rpc_impl(attr.into(), item))
}

fn rpc_impl(attr: TokenStream2, item: TokenStream) -> syn::Result<TokenStream2> {
    let f: ItemFn = syn::parse(item)?;
    let args: Args = syn::parse2(attr)?;
    let (mut model, mut method) = (None, None);
    for arg in &args.0 {
        match arg.key.as_ref().map(|k| k.to_string()).as_deref() {
            Some("model") => model = Some(lit_str(&arg.value)?),
            Some("method") => method = Some(lit_str(&arg.value)?),
            other => {
                return Err(syn::Error::new_spanned(
                    &arg.value,
                    format!(
                        "unknown key `{}`: #[rpc(model = \"...\", method = \"...\")]",
                        other.unwrap_or("")
                    ),
                ))
            }
        }
    }
    let (Some(model), Some(method)) = (model, method) else {
        return Err(syn::Error::new_spanned(
            &f.sig.ident,
            "an RPC method needs its model and method: #[rpc(model = \"res.partner\", method = \"read\")]",
        ));
    };
    Ok(registered(
        &f,
        "RpcMethod",
        quote!(model: #model, method: #method,),
    ))
}

/// Declares a hook run once when the host loads the addon.
#[proc_macro_attribute]
pub fn post_load(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand((|| {
        if !attr.is_empty() {
            return Err(syn::Error::new(
                Span::call_site(),
                "#[post_load] takes no arguments",
            ));
        }
        let f: ItemFn = syn::parse(item)?;
        let name = f.sig.ident.to_string();
        Ok(registered(&f, "PostLoad", quote!(name: #name,)))
    })())
}

/// A name: letters, digits and `_`, not starting with a digit.
fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The function `f` registered as an `ir.http` hook of `kind` (a `HookFn` variant) under
/// `name` (the function's path when `None`).
fn hook(f: &ItemFn, kind: &str, name: Option<TokenStream2>) -> TokenStream2 {
    let run = &f.sig.ident;
    let kind = Ident::new(kind, Span::call_site());
    let fn_name = run.to_string();
    let name = name.unwrap_or_else(|| quote!(concat!(module_path!(), "::", #fn_name)));
    let submit = submit(
        "Hook",
        quote!(name: #name, run: ::inphms_sdk::__private::HookFn::#kind(#run),),
    );
    quote! {
        #f
        #submit
    }
}

/// A hook macro that takes no arguments.
fn plain_hook(attr: TokenStream, item: TokenStream, macro_name: &str, kind: &str) -> TokenStream {
    expand((|| {
        if !attr.is_empty() {
            return Err(syn::Error::new(
                proc_macro2::TokenStream::from(attr)
                    .into_iter()
                    .next()
                    .map_or(Span::call_site(), |t| t.span()),
                format!("#[{macro_name}] takes no arguments"),
            ));
        }
        let f: ItemFn = syn::parse(item)?;
        Ok(hook(&f, kind, None))
    })())
}

/// Registers an authentication method by name (Odoo's `ir.http._auth_method_<name>`),
/// used by routes declared `auth = "<name>"`.
///
/// On a `fn(&mut Request) -> Result<()>`: `Ok` lets the request through (changes to the
/// session are kept for the handler), an error refuses it (`Error::access` is a 403 on
/// http routes). The name cannot be one of the host's (`none`, `public`, `user`,
/// `bearer`).
#[proc_macro_attribute]
pub fn auth_method(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand((|| {
        let f: ItemFn = syn::parse(item)?;
        let args: Args = syn::parse2(attr.into())?;
        let [Arg { key: None, value }] = args.0.as_slice() else {
            return Err(syn::Error::new_spanned(
                &f.sig.ident,
                "an auth method needs its name and nothing else, e.g. #[auth_method(\"token\")]",
            ));
        };
        let name = lit_str(value)?;
        if !is_name(&name.value()) {
            return Err(syn::Error::new_spanned(
                value,
                "an auth method's name is letters, digits and `_`",
            ));
        }
        if ["none", "public", "user", "bearer"].contains(&name.value().as_str()) {
            return Err(syn::Error::new_spanned(
                value,
                format!("`{}` is one of the host's own auth methods", name.value()),
            ));
        }
        Ok(hook(&f, "Auth", Some(quote!(#name))))
    })())
}

/// Registers a pre-dispatch hook (Odoo's `ir.http._pre_dispatch`): a
/// `fn(&mut Request) -> Result<Option<Response>>` run before every routed handler, in
/// dependency order; `Some(response)` answers early.
#[proc_macro_attribute]
pub fn pre_dispatch(attr: TokenStream, item: TokenStream) -> TokenStream {
    plain_hook(attr, item, "pre_dispatch", "PreDispatch")
}

/// Registers a post-dispatch hook (Odoo's `ir.http._post_dispatch`): a
/// `fn(&mut Request, &mut EndpointResult) -> Result<()>` run after every routed handler
/// that succeeded, in dependency order, able to change its result. See
/// `inphms_sdk::post_dispatch`.
#[proc_macro_attribute]
pub fn post_dispatch(attr: TokenStream, item: TokenStream) -> TokenStream {
    plain_hook(attr, item, "post_dispatch", "PostDispatch")
}

/// Registers an error handler (Odoo's `ir.http._handle_error`): a
/// `fn(&mut Request, &Error) -> Result<Option<Response>>`; the most derived addon's runs
/// first, and the first `Some(response)` answers.
#[proc_macro_attribute]
pub fn handle_error(attr: TokenStream, item: TokenStream) -> TokenStream {
    plain_hook(attr, item, "handle_error", "HandleError")
}

/// Registers a fallback (Odoo's `ir.http._serve_fallback`): a
/// `fn(&mut Request) -> Result<Option<Response>>` offered, in dependency order, the
/// requests no route matched, before the 404.
#[proc_macro_attribute]
pub fn fallback(attr: TokenStream, item: TokenStream) -> TokenStream {
    plain_hook(attr, item, "fallback", "Fallback")
}

/// Exports the addon's root module.
///
/// `inphms_sdk::addon!();` declares the addon under its crate name;
/// `inphms_sdk::addon!(name = "my_addon");` under another.
#[proc_macro]
pub fn addon(input: TokenStream) -> TokenStream {
    expand((|| {
        let args: Args = syn::parse(input)?;
        let mut name = quote!(env!("CARGO_CRATE_NAME"));
        for arg in &args.0 {
            match arg.key.as_ref().map(|k| k.to_string()).as_deref() {
                None | Some("name") => {
                    let v = lit_str(&arg.value)?;
                    name = quote!(#v);
                }
                Some(other) => {
                    return Err(syn::Error::new_spanned(
                        &arg.value,
                        format!("unknown key `{other}`"),
                    ))
                }
            }
        }
        let export = Ident::new(
            &abi_stable_shared::mangled_root_module_loader_name(),
            Span::call_site(),
        );
        Ok(quote! {
            #[doc(hidden)]
            fn __inphms_root_module() -> ::inphms_sdk::abi::AddonModuleRef {
                ::inphms_sdk::__private::addon_names(#name, env!("CARGO_CRATE_NAME"));
                ::inphms_sdk::__private::root_module(#name, cfg!(panic = "unwind"))
            }

            #[doc(hidden)]
            #[no_mangle]
            pub static #export: ::inphms_sdk::__private::abi_stable::library::LibHeader = {
                pub extern "C" fn __inphms_erased_root_module(
                ) -> ::inphms_sdk::__private::abi_stable::library::RootModuleResult {
                    ::inphms_sdk::__private::abi_stable::library::__call_root_module_loader(
                        __inphms_root_module,
                    )
                }
                unsafe {
                    ::inphms_sdk::__private::abi_stable::library::LibHeader::from_constructor::<
                        ::inphms_sdk::abi::AddonModuleRef,
                    >(
                        __inphms_erased_root_module,
                        ::inphms_sdk::__private::abi_stable::library::CheckTypeLayout::Yes,
                    )
                }
            };
        })
    })())
}
