//! Random ids (request ids, event ids): UUID v4 from the thread-local CSPRNG, seeded from the OS
//! once per thread, where `Uuid::new_v4` makes a getrandom system call for every id.

pub fn uuid() -> uuid::Uuid {
    uuid::Builder::from_random_bytes(rand::random()).into_uuid()
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_distinct_version_4_uuids() {
        let (a, b) = (super::uuid(), super::uuid());
        assert_ne!(a, b);
        assert_eq!(a.get_version_num(), 4);
        assert_eq!(a.get_variant(), uuid::Variant::RFC4122);
    }
}
