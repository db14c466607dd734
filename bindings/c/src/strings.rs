//! C strings in and out, out-parameters, and the library version.

use std::ffi::{c_char, CStr, CString};
use std::panic::catch_unwind;

use crate::error::{swimraft_result, Failure};

/// Borrows a required NUL-terminated UTF-8 argument.
///
/// # Safety
/// `ptr` is NULL or points to a NUL-terminated string that outlives `'a`.
pub(crate) unsafe fn arg_str<'a>(ptr: *const c_char, name: &str) -> Result<&'a str, Failure> {
    if ptr.is_null() {
        return Err(Failure::null(name));
    }
    // SAFETY: non-NULL and NUL-terminated per the caller's contract.
    let text = unsafe { CStr::from_ptr(ptr) };
    text.to_str().map_err(|err| {
        Failure::new(
            swimraft_result::SWIMRAFT_INVALID_UTF8,
            format!("argument `{name}` is not valid UTF-8: {err}"),
        )
    })
}

/// Borrows an optional NUL-terminated UTF-8 argument (NULL gives `None`).
///
/// # Safety
/// As [`arg_str`].
pub(crate) unsafe fn opt_arg_str<'a>(
    ptr: *const c_char,
    name: &str,
) -> Result<Option<&'a str>, Failure> {
    if ptr.is_null() {
        Ok(None)
    } else {
        // SAFETY: forwarded contract.
        unsafe { arg_str(ptr, name) }.map(Some)
    }
}

/// Checks an out-parameter; it is written only at the end of a successful call.
pub(crate) fn out_ptr<T>(ptr: *mut T, name: &str) -> Result<*mut T, Failure> {
    if ptr.is_null() {
        Err(Failure::null(name))
    } else {
        Ok(ptr)
    }
}

/// Writes `value` through a checked out-parameter.
///
/// # Safety
/// `ptr` came from [`out_ptr`] and points to writable memory for a `T`.
pub(crate) unsafe fn write_out<T>(ptr: *mut T, value: T) {
    // SAFETY: non-NULL (checked by `out_ptr`) and writable per the caller's contract. `write`
    // does not drop the previous (uninitialized) contents.
    unsafe { ptr.write(value) }
}

/// A string handed to the caller, who releases it with `swimraft_string_free`.
pub(crate) fn owned_c_string(text: String) -> Result<*mut c_char, Failure> {
    CString::new(text)
        .map(CString::into_raw)
        .map_err(|err| Failure::internal(format!("string with an interior NUL: {err}")))
}

/// The outcome of `serde_json::to_string` handed to the caller.
pub(crate) fn owned_json(json: serde_json::Result<String>) -> Result<*mut c_char, Failure> {
    // JSON escapes control characters, so the text never holds a NUL.
    let text = json.map_err(|err| Failure::internal(format!("cannot serialize to JSON: {err}")))?;
    owned_c_string(text)
}

/// Releases a string that a swimraft function returned through a `char **` out-parameter.
/// NULL does nothing. Never pass other strings (not `swimraft_last_error_message()`, not
/// `swimraft_version()`, not memory from `malloc`), and never free a string twice.
///
/// # Safety
/// `string` is NULL or a pointer returned by swimraft through `char **` and not freed yet.
#[no_mangle]
pub unsafe extern "C" fn swimraft_string_free(string: *mut c_char) {
    if string.is_null() {
        return;
    }
    // SAFETY: made by `CString::into_raw` in `owned_c_string`, not freed yet (caller contract).
    // Freeing cannot panic; the boundary is there so that nothing ever unwinds into C.
    let _ = catch_unwind(|| drop(unsafe { CString::from_raw(string) }));
}

/// `CARGO_PKG_VERSION` with the terminating NUL that C needs.
const VERSION: &CStr =
    match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
        Ok(version) => version,
        Err(_) => c"unknown",
    };

/// The library version, e.g. `"0.1.0"`. A static string: never NULL, never freed.
#[no_mangle]
pub extern "C" fn swimraft_version() -> *const c_char {
    VERSION.as_ptr()
}
