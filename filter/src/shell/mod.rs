//! The proxy-wasm shell: gathers a request's inputs from the host, hands them to the pure core,
//! and applies what comes back. Nothing in here decides anything.

mod abi;
mod apply;
mod host;
mod http;
mod root;
mod stats;

#[cfg(target_os = "wasi")]
extern "C" {
    fn __wasm_call_ctors();
}

/// The module's start, which Envoy calls once per VM before anything else.
#[no_mangle]
pub extern "C" fn _initialize() {
    #[cfg(target_os = "wasi")]
    // SAFETY: the WASI reactor's constructors, run once, first, as the SDK's `main!` runs them.
    unsafe {
        __wasm_call_ctors();
    }
    // A panic aborts the VM; say why first, so the log explains the failed requests that follow.
    std::panic::set_hook(Box::new(|info| {
        host::log(
            host::LogLevel::Critical,
            &format!("ext_authz: panic: {info}"),
        );
    }));
    abi::set_root_context(|_| -> Box<dyn abi::RootContext> {
        Box::new(root::ExtAuthzRoot::default())
    });
}
