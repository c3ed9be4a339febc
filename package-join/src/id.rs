//! What makes two package IDs the same package (part A §5.5).

use std::borrow::Cow;

/// Package IDs compare exactly, except GUID-shaped ones, which compare
/// case-insensitively (part A §5.5).
pub fn same_package(a: &str, b: &str) -> bool {
    same_id(a.as_bytes(), b.as_bytes())
}

/// [`same_package`] on the IDs' bytes.
#[inline(always)]
pub(crate) fn same_id(a: &[u8], b: &[u8]) -> bool {
    a == b || (is_guid(a) && is_guid(b) && a.eq_ignore_ascii_case(b))
}

/// `8-4-4-4-12` hex digits, optionally inside braces.
fn is_guid(id: &[u8]) -> bool {
    let mut id = id;
    while let [b'{', rest @ ..] = id {
        id = rest;
    }
    while let [rest @ .., b'}'] = id {
        id = rest;
    }
    id.len() == 36
        && id.iter().enumerate().all(|(i, &c)| match i {
            8 | 13 | 18 | 23 => c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// A package ID as [`same_package`] sees it: a GUID in upper case, any
/// other ID as it is. Two IDs are the same package exactly when their keys
/// are equal, so the join can use a hash table instead of comparing every
/// pair.
pub fn key(id: &[u8]) -> Cow<'_, [u8]> {
    if has_ascii_lowercase(id) && is_guid(id) {
        Cow::Owned(id.to_ascii_uppercase())
    } else {
        Cow::Borrowed(id)
    }
}

/// Whether `bytes` has one in `a..=z`, eight at a time (package IDs are
/// mostly upper case: this is what most of them cost).
fn has_ascii_lowercase(bytes: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const LOW7: u64 = ONES * 0x7F;
    const HIGH: u64 = ONES * 0x80;
    // A byte's high bit set exactly where it is above 0x60 and below 0x7B
    // (the "has between" bit trick: no carries cross bytes).
    let between = |x: u64| {
        let low = x & LOW7;
        (ONES * (0x7F + 0x7B)).wrapping_sub(low)
            & !x
            & low.wrapping_add(ONES * (0x7F - 0x60))
            & HIGH
    };
    let mut rest = bytes;
    while let Some((word, after)) = rest.split_first_chunk::<8>() {
        if between(u64::from_le_bytes(*word)) != 0 {
            return true;
        }
        rest = after;
    }
    match bytes.last_chunk::<8>() {
        // The last eight bytes, overlapping ones already checked.
        Some(last) if !rest.is_empty() => between(u64::from_le_bytes(*last)) != 0,
        _ => rest.iter().any(u8::is_ascii_lowercase),
    }
}

/// IDs whose sameness is easy to get wrong: a GUID in both cases, braced,
/// doubly braced, a near-GUID, IDs that differ only in case, the empty ID.
/// The fixture of this crate's tests and of its caller's.
#[doc(hidden)]
pub fn tricky_ids() -> [String; 10] {
    let guid = "9a437ca5-5b17-4486-9e87-260742074a72";
    [
        guid.to_owned(),
        guid.to_uppercase(),
        format!("{{{guid}}}"),
        format!("{{{}}}", guid.to_uppercase()),
        format!("{{{{{guid}}}"),
        "9A437CA5-5B17-4486-9E87-260742074A7G".to_owned(),
        "abc".to_owned(),
        "ABC".to_owned(),
        "CEN00042".to_owned(),
        String::new(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowercase_detection() {
        for b in 0..=255u8 {
            for pos in 0..17 {
                let mut s = vec![b'A'; 17];
                s[pos] = b;
                let s = String::from_utf8_lossy(&s);
                assert_eq!(
                    has_ascii_lowercase(s.as_bytes()),
                    s.bytes().any(|c| c.is_ascii_lowercase()),
                    "{s:?}"
                );
            }
        }
    }

    #[test]
    fn equal_keys_are_the_same_package() {
        let ids = tricky_ids();
        for a in &ids {
            for b in &ids {
                assert_eq!(
                    key(a.as_bytes()) == key(b.as_bytes()),
                    same_package(a, b),
                    "{a} {b}"
                );
            }
        }
        assert!(
            !same_package("abc", "ABC"),
            "non-GUID IDs are case-sensitive"
        );
    }
}
