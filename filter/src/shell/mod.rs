//! The proxy-wasm shell: the ABI's entry points ([`abi`]), the [`crate::host::Host`] adapter over
//! its host functions ([`host`]), and the root and stream contexts that register with them. Nothing
//! in here decides anything: the stream's life is [`crate::stream::ExtAuthz`].

mod abi;
mod host;
mod imports;
mod root;
mod stream;

use crate::host::{Host, LogLevel};

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
        host::WasmHost.log(LogLevel::Critical, &format!("ext_authz: panic: {info}"));
    }));
    abi::set_root_context(|_| -> Box<dyn abi::RootContext> {
        Box::new(root::ExtAuthzRoot::default())
    });
}
