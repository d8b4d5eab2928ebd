//! SUIT vendor and class identifiers (RFC 4122 UUIDs, 16 bytes).
//!
//! As draft-ietf-suit-manifest recommends: the vendor id is UUID v5 of the
//! vendor's domain name in the DNS namespace, and the class id is UUID v5 of
//! the class name in the vendor id's namespace. A string that already is a
//! UUID (`8-4-4-4-12` hex, any case, with or without hyphens/braces/urn) is
//! taken as is.

use uuid::Uuid;

/// The vendor id for a vendor domain name, or the UUID given.
///
/// ```
/// // The draft's example: vendor "arm.com".
/// let v = deltaseal_sign::ids::vendor_id("arm.com");
/// assert_eq!(v[..4], [0xfa, 0x6b, 0x4a, 0x53]);
/// ```
pub fn vendor_id(name_or_uuid: &str) -> [u8; 16] {
    Uuid::parse_str(name_or_uuid)
        .unwrap_or_else(|_| Uuid::new_v5(&Uuid::NAMESPACE_DNS, name_or_uuid.as_bytes()))
        .into_bytes()
}

/// The class id for a class name within a vendor, or the UUID given.
pub fn class_id(vendor: &[u8; 16], name_or_uuid: &str) -> [u8; 16] {
    Uuid::parse_str(name_or_uuid)
        .unwrap_or_else(|_| Uuid::new_v5(&Uuid::from_bytes(*vendor), name_or_uuid.as_bytes()))
        .into_bytes()
}

/// The device id (SUIT device-identifier) for a device name (e.g. a serial
/// number) within a class: UUID v5 of the name in the class id's namespace,
/// or the UUID given.
pub fn device_id(class: &[u8; 16], name_or_uuid: &str) -> [u8; 16] {
    class_id(class, name_or_uuid)
}
