//! The few OpenSSL calls the `openssl` crate does not wrap. Each is a read-only query on a
//! live `SSL` object that the caller holds a `&SslRef` to.

use foreign_types::ForeignTypeRef as _;
use openssl::ssl::SslRef;
use openssl_sys as sys;

/// The data of extension `ext_type` in the ClientHello being processed, if present. Only
/// meaningful inside the ClientHello callback.
#[allow(unsafe_code)]
pub(crate) fn client_hello_extension(ssl: &SslRef, ext_type: u16) -> Option<&[u8]> {
    let mut out: *const std::os::raw::c_uchar = std::ptr::null();
    let mut len: usize = 0;
    // SAFETY: `ssl` is a valid SSL* for the duration of the borrow; OpenSSL only reads it
    // and writes the two out-pointers, which point to live locals.
    let found = unsafe {
        sys::SSL_client_hello_get0_ext(ssl.as_ptr(), u32::from(ext_type), &mut out, &mut len)
    };
    if found != 1 {
        return None;
    }
    if len == 0 {
        return Some(&[]);
    }
    // SAFETY: on success `out` points to `len` bytes inside the ClientHello buffer held by
    // the SSL object, which stays alive and unmodified while `ssl` is borrowed (the
    // returned slice's lifetime is tied to that borrow).
    Some(unsafe { std::slice::from_raw_parts(out, len) })
}

/// `SSL_get_extms_support`: `Some(true)` when the completed handshake used Extended Master
/// Secret (RFC 7627), `None` while a handshake is in progress.
#[allow(unsafe_code)]
pub(crate) fn extended_master_secret(ssl: &SslRef) -> Option<bool> {
    // SAFETY: a read-only SSL_ctrl query on a valid SSL*.
    match unsafe { sys::SSL_get_extms_support(ssl.as_ptr()) } {
        1 => Some(true),
        0 => Some(false),
        _ => None,
    }
}

/// `SSL_get_secure_renegotiation_support` (a C macro over `SSL_ctrl`): whether the peer
/// supports RFC 5746 renegotiation indication.
#[allow(unsafe_code)]
pub(crate) fn secure_renegotiation(ssl: &SslRef) -> bool {
    const SSL_CTRL_GET_RI_SUPPORT: std::os::raw::c_int = 76;
    // SAFETY: a read-only SSL_ctrl query on a valid SSL*; the parg argument is unused.
    unsafe {
        sys::SSL_ctrl(
            ssl.as_ptr(),
            SSL_CTRL_GET_RI_SUPPORT,
            0,
            std::ptr::null_mut(),
        ) == 1
    }
}
