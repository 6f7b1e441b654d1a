//! # seedbank-macros — the `#[seedbank::test]` attribute
//!
//! Use it through the `seedbank` crate (`#[seedbank::test]`), which documents it with
//! examples. This crate only rewrites syntax:
//!
//! ```text
//! #[seedbank::test(seeds = 0..64, random_faults)]
//! async fn name(ctx: seedbank::Ctx) -> R { body }
//! ```
//!
//! becomes an ordinary `#[test] fn name()` that builds a `seedbank::Test` for this
//! test (its package, test target and libtest name, taken at the call site), calls one
//! builder method per argument — `key = value` becomes `.key(value)`, a bare `key`
//! becomes `.key()`, `key(a, b)` becomes `.key(a, b)` — and runs the body with
//! `.run(...)`. Every builder method of `seedbank::Test` is therefore an argument, and
//! a misspelt one is a compile error that names it. Other attributes on the function
//! (`#[ignore]`, `#[cfg_attr(...)]`, doc comments) move to the generated `#[test]`.

use proc_macro::TokenStream;
use proc_macro2::TokenStream as TokenStream2;
use quote::{format_ident, quote};
use syn::punctuated::Punctuated;
use syn::{parse_macro_input, Error, ItemFn, Meta, Token, Visibility};

/// Runs an `async fn` across seeds in the simulated world, and once on tokio in the
/// real world. See the `seedbank` crate for the arguments and examples.
#[proc_macro_attribute]
pub fn test(args: TokenStream, item: TokenStream) -> TokenStream {
    let args = parse_macro_input!(args with Punctuated::<Meta, Token![,]>::parse_terminated);
    let func = parse_macro_input!(item as ItemFn);
    match expand(args, func) {
        Ok(tokens) => tokens.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

fn expand(args: Punctuated<Meta, Token![,]>, func: ItemFn) -> syn::Result<TokenStream2> {
    let sig = &func.sig;
    if sig.asyncness.is_none() {
        return Err(Error::new_spanned(
            sig.fn_token,
            "#[seedbank::test] needs an `async fn`",
        ));
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        return Err(Error::new_spanned(
            &sig.generics,
            "#[seedbank::test] functions cannot be generic",
        ));
    }
    if sig.inputs.len() > 1 {
        return Err(Error::new_spanned(
            &sig.inputs,
            "#[seedbank::test] functions take no argument or one: `ctx: seedbank::Ctx`",
        ));
    }
    let calls = args
        .iter()
        .map(builder_call)
        .collect::<syn::Result<Vec<_>>>()?;
    let name = &sig.ident;
    let attrs = &func.attrs;
    let vis = &func.vis;
    let mut body = func.clone();
    body.attrs.clear();
    body.vis = Visibility::Inherited;
    body.sig.ident = format_ident!("__seedbank_body");
    let call = if sig.inputs.is_empty() {
        quote!(|_ctx: ::seedbank::Ctx| __seedbank_body())
    } else {
        quote!(|ctx: ::seedbank::Ctx| __seedbank_body(ctx))
    };
    Ok(quote! {
        #(#attrs)*
        #[::core::prelude::v1::test]
        #vis fn #name() {
            #body
            ::seedbank::Test::named(::seedbank::origin!(), ::core::stringify!(#name))
                #(#calls)*
                .run(#call);
        }
    })
}

/// `key = value` → `.key(value)`, `key` → `.key()`, `key(a, b)` → `.key(a, b)`.
fn builder_call(meta: &Meta) -> syn::Result<TokenStream2> {
    let ident = meta.path().get_ident().ok_or_else(|| {
        Error::new_spanned(
            meta.path(),
            "expected a `seedbank::Test` builder method name, e.g. `seeds = 0..64`",
        )
    })?;
    Ok(match meta {
        Meta::Path(_) => quote!(.#ident()),
        Meta::NameValue(nv) => {
            let value = &nv.value;
            quote!(.#ident(#value))
        }
        Meta::List(list) => {
            let tokens = &list.tokens;
            quote!(.#ident(#tokens))
        }
    })
}
