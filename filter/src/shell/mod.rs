//! The proxy-wasm shell: gathers a request's inputs from the host, hands them to the pure core,
//! and applies what comes back. Nothing in here decides anything.

mod apply;
mod host;
mod http;
mod root;
mod stats;

use proxy_wasm::types::LogLevel;

proxy_wasm::main! {{
    // A panic aborts the VM; say why first, so the log explains the failed requests that follow.
    std::panic::set_hook(Box::new(|info| {
        host::log(host::LogLevel::Critical, &format!("ext_authz: panic: {info}"));
    }));
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn proxy_wasm::traits::RootContext> {
        Box::new(root::ExtAuthzRoot::default())
    });
}}
