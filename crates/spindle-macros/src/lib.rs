//! # spindle-macros: `#[spindle::main]` and `#[spindle::test]`
//!
//! Use them through the `spindle` crate (`#[spindle::main]`, `#[spindle::test]`); this crate
//! only expands them, into code that names `::spindle`.
//!
//! - `#[spindle::main]` on `async fn main()` runs the body with `spindle::run` (asyncio's
//!   `asyncio.run(main())`): a new loop on the main thread, run, cancel what is left, close.
//! - `#[spindle::main(workers = N)]` runs it with `Runtime::block_on` on a runtime of `N`
//!   worker loops (so `spindle::spawn` works inside), shut down afterwards.
//! - `#[spindle::test]` and `#[spindle::test(workers = N)]` do the same for a `#[test]`.
//!
//! A non-`async` function, parameters, generics, or an argument other than `workers = N`
//! (`N >= 1`) are compile errors that say what to write instead. If the loop or the runtime
//! cannot start, the function panics with the reason.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{parse_macro_input, ItemFn};

/// Runs `async fn main()` on a spindle loop, or on a runtime with `workers = N`.
/// See the `spindle` crate's docs for examples.
#[proc_macro_attribute]
pub fn main(args: TokenStream, item: TokenStream) -> TokenStream {
    expand(args, item, Kind::Main)
}

/// Runs an `async fn` test on a spindle loop, or on a runtime with `workers = N`.
/// See the `spindle` crate's docs for examples.
#[proc_macro_attribute]
pub fn test(args: TokenStream, item: TokenStream) -> TokenStream {
    expand(args, item, Kind::Test)
}

#[derive(Clone, Copy)]
enum Kind {
    Main,
    Test,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Main => "#[spindle::main]",
            Kind::Test => "#[spindle::test]",
        }
    }
}

fn expand(args: TokenStream, item: TokenStream, kind: Kind) -> TokenStream {
    let mut workers: Option<usize> = None;
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("workers") {
            let value: syn::Expr = meta.value()?.parse()?;
            let lit = match &value {
                syn::Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Int(lit),
                    ..
                }) => lit.clone(),
                other => {
                    return Err(syn::Error::new(
                        other.span(),
                        "`workers` takes a whole number of worker loops: `workers = 4`",
                    ))
                }
            };
            let n: usize = lit.base10_parse()?;
            if n == 0 {
                return Err(syn::Error::new(
                    lit.span(),
                    "`workers` must be at least 1 (or leave it out to run on one loop)",
                ));
            }
            workers = Some(n);
            Ok(())
        } else {
            Err(meta.error(format!(
                "unknown argument to {}: the only one is `workers = N` (N >= 1 worker loops)",
                kind.name()
            )))
        }
    });
    parse_macro_input!(args with parser);
    let function = parse_macro_input!(item as ItemFn);
    match generate(function, workers, kind) {
        Ok(tokens) => tokens.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

fn generate(function: ItemFn, workers: Option<usize>, kind: Kind) -> syn::Result<TokenStream2> {
    let sig = &function.sig;
    if sig.asyncness.is_none() {
        return Err(syn::Error::new(
            sig.fn_token.span(),
            format!(
                "{} needs an `async fn`: write `async fn {}(..)`",
                kind.name(),
                sig.ident
            ),
        ));
    }
    if !sig.inputs.is_empty() {
        return Err(syn::Error::new(
            sig.inputs.span(),
            format!("{} takes a function without parameters", kind.name()),
        ));
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        return Err(syn::Error::new(
            sig.generics.span(),
            format!("{} takes a function without generics", kind.name()),
        ));
    }
    let attrs = &function.attrs;
    let vis = &function.vis;
    let name = &sig.ident;
    let output = &sig.output;
    let body = &function.block;
    let span = Span::call_site();
    let run = match workers {
        None => quote_spanned! {span=>
            ::spindle::run(__spindle_body).unwrap_or_else(|e| {
                ::core::panic!("spindle could not run the async fn: {}", e)
            })
        },
        Some(n) => quote_spanned! {span=>
            {
                let __spindle_rt = ::spindle::Runtime::builder()
                    .worker_threads(#n)
                    .build()
                    .unwrap_or_else(|e| {
                        ::core::panic!("spindle could not start a runtime of {} workers: {}", #n, e)
                    });
                let __spindle_out = __spindle_rt.block_on(__spindle_body).unwrap_or_else(|e| {
                    ::core::panic!("spindle could not run the async fn: {}", e)
                });
                __spindle_rt.shutdown();
                __spindle_out
            }
        },
    };
    let test_attr = match kind {
        Kind::Main => quote! {},
        Kind::Test => quote! { #[::core::prelude::v1::test] },
    };
    Ok(quote! {
        #test_attr
        #(#attrs)*
        #vis fn #name() #output {
            let __spindle_body = async move #body;
            #run
        }
    })
}
