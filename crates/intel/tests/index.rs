//! The matcher index: each kind's matching rule, edge cases of suffixes and prefixes.

use dozor_intel::{IntelError, Ioc, IocIndex, IocKind};

fn index(iocs: &[(IocKind, &str)]) -> IocIndex {
    let mut b = IocIndex::builder();
    for (id, (kind, value)) in iocs.iter().enumerate() {
        b.add(id as u32, *kind, value)
            .unwrap_or_else(|e| panic!("{value}: {e}"));
    }
    b.build()
}

#[test]
fn a_domain_matches_itself_and_names_under_it_at_label_boundaries() {
    let ix = index(&[
        (IocKind::Domain, "Evil.com."),
        (IocKind::Domain, "b.bad.org"),
    ]);
    for hit in ["evil.com", "a.b.EVIL.com", "x.evil.com.", "www.evil.com"] {
        assert_eq!(ix.lookup_ids(IocKind::Domain, hit), vec![0], "{hit}");
    }
    for miss in [
        "notevil.com",
        "evil.com.au",
        "evil.co",
        "com",
        "vil.com",
        "bad.org",
        "",
    ] {
        assert!(ix.lookup_ids(IocKind::Domain, miss).is_empty(), "{miss}");
    }
    assert_eq!(ix.lookup_ids(IocKind::Hostname, "c.b.bad.org"), vec![1]);
}

#[test]
fn a_hostname_matches_exactly_and_a_name_can_hit_both_kinds() {
    let ix = index(&[
        (IocKind::Hostname, "mail.evil.com"),
        (IocKind::Domain, "evil.com"),
    ]);
    assert!(ix.lookup_ids(IocKind::Domain, "x.mail.evil.com") == vec![1]);
    let mut kinds = Vec::new();
    ix.lookup(IocKind::Domain, "MAIL.evil.com", &mut |k, ids| {
        kinds.push((k, ids.to_vec()))
    });
    assert_eq!(
        kinds,
        vec![(IocKind::Hostname, vec![0]), (IocKind::Domain, vec![1])]
    );
}

#[test]
fn ipv4_addresses_and_networks_including_slash_0_and_slash_32() {
    let ix = index(&[
        (IocKind::Ip, "192.0.2.7"),
        (IocKind::Cidr, "198.51.100.77/24"),
        (IocKind::Cidr, "10.0.0.0/8"),
        (IocKind::Cidr, "203.0.113.9/32"),
    ]);
    assert_eq!(ix.lookup_ids(IocKind::Ip, "192.0.2.7"), vec![0]);
    assert!(ix.lookup_ids(IocKind::Ip, "192.0.2.8").is_empty());
    assert_eq!(ix.lookup_ids(IocKind::Ip, "198.51.100.1"), vec![1]);
    assert_eq!(ix.lookup_ids(IocKind::Ip, "198.51.100.255"), vec![1]);
    assert!(ix.lookup_ids(IocKind::Ip, "198.51.101.0").is_empty());
    assert_eq!(ix.lookup_ids(IocKind::Ip, "10.255.0.1"), vec![2]);
    assert!(ix.lookup_ids(IocKind::Ip, "11.0.0.0").is_empty());
    assert_eq!(ix.lookup_ids(IocKind::Ip, "203.0.113.9"), vec![3]);
    assert_eq!(ix.lookup_ids(IocKind::Ip, "::ffff:203.0.113.9"), vec![3]);
    assert!(ix.lookup_ids(IocKind::Ip, "not an ip").is_empty());

    let all = index(&[(IocKind::Cidr, "0.0.0.0/0"), (IocKind::Ip, "192.0.2.7")]);
    assert_eq!(all.lookup_ids(IocKind::Ip, "192.0.2.7"), vec![0, 1]);
    assert_eq!(all.lookup_ids(IocKind::Ip, "255.255.255.255"), vec![0]);
    assert!(
        all.lookup_ids(IocKind::Ip, "2001:db8::1").is_empty(),
        "v4 /0 is not v6"
    );
}

#[test]
fn ipv6_addresses_and_networks_including_slash_0_and_slash_128() {
    let ix = index(&[
        (IocKind::Ip, "2001:DB8::1"),
        (IocKind::Cidr, "2001:db8:aa::/48"),
        (IocKind::Cidr, "2001:db8::2/128"),
        (IocKind::Cidr, "::/0"),
    ]);
    assert_eq!(ix.lookup_ids(IocKind::Ip, "2001:db8:0::1"), vec![0, 3]);
    assert_eq!(ix.lookup_ids(IocKind::Ip, "2001:db8::2"), vec![2, 3]);
    assert_eq!(
        ix.lookup_ids(IocKind::Ip, "2001:db8:aa:ffff::9"),
        vec![1, 3]
    );
    assert_eq!(ix.lookup_ids(IocKind::Ip, "2001:db8:ab::9"), vec![3]);
    assert!(
        ix.lookup_ids(IocKind::Ip, "192.0.2.1").is_empty(),
        "v6 /0 is not v4"
    );
}

#[test]
fn the_kind_reported_for_an_address_is_ip_or_cidr() {
    let ix = index(&[(IocKind::Ip, "192.0.2.7"), (IocKind::Cidr, "192.0.2.0/24")]);
    let mut got = Vec::new();
    ix.lookup(IocKind::Ip, "192.0.2.7", &mut |k, ids| {
        got.push((k, ids.to_vec()))
    });
    assert_eq!(got, vec![(IocKind::Ip, vec![0]), (IocKind::Cidr, vec![1])]);
}

#[test]
fn hashes_match_in_either_case_and_only_their_own_kind() {
    let md5 = "44d88612fea8a8f36de82e1278abb02f";
    let sha256 = "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f";
    let ix = index(&[(IocKind::Md5, md5), (IocKind::Sha256, sha256)]);
    assert_eq!(ix.lookup_ids(IocKind::Md5, &md5.to_uppercase()), vec![0]);
    assert_eq!(ix.lookup_ids(IocKind::Sha256, sha256), vec![1]);
    assert!(ix.lookup_ids(IocKind::Imphash, md5).is_empty());
    assert!(ix.lookup_ids(IocKind::Sha1, md5).is_empty());
    assert!(ix.lookup_ids(IocKind::Md5, "zz").is_empty());
}

#[test]
fn urls_match_normalized_with_or_without_the_scheme() {
    let ix = index(&[
        (IocKind::Url, "HTTP://Evil.COM/Payload.exe"),
        (IocKind::Url, "bad.org/x"),
    ]);
    assert_eq!(
        ix.lookup_ids(IocKind::Url, "http://evil.com/Payload.exe"),
        vec![0]
    );
    assert!(
        ix.lookup_ids(IocKind::Url, "http://evil.com/payload.exe")
            .is_empty()
    );
    assert_eq!(ix.lookup_ids(IocKind::Url, "https://BAD.org/x"), vec![1]);
    assert_eq!(ix.lookup_ids(IocKind::Url, "bad.org/x"), vec![1]);
}

#[test]
fn registry_keys_match_the_key_and_everything_below_it() {
    let ix = index(&[(
        IocKind::RegistryKey,
        "HKEY_CURRENT_USER\\Software\\Microsoft\\Windows\\CurrentVersion\\Run\\Evil",
    )]);
    assert_eq!(
        ix.lookup_ids(
            IocKind::RegistryKey,
            "HKCU\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Run\\Evil"
        ),
        vec![0]
    );
    assert_eq!(
        ix.lookup_ids(
            IocKind::RegistryKey,
            "HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Run\\Evil\\Sub"
        ),
        vec![0]
    );
    assert!(
        ix.lookup_ids(
            IocKind::RegistryKey,
            "HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Run\\EvilTwin"
        )
        .is_empty()
    );
}

#[test]
fn filenames_emails_user_agents_and_ja3() {
    let ja3 = "e7d705a3286e19ea42f587b344ee6865";
    let ix = index(&[
        (IocKind::Filename, "Mimikatz.exe"),
        (IocKind::Email, "Bad@Evil.com"),
        (IocKind::UserAgent, "EvilBot/1.0"),
        (IocKind::Ja3, ja3),
    ]);
    assert_eq!(ix.lookup_ids(IocKind::Filename, "MIMIKATZ.EXE"), vec![0]);
    assert_eq!(ix.lookup_ids(IocKind::Email, "bad@EVIL.com"), vec![1]);
    assert_eq!(ix.lookup_ids(IocKind::UserAgent, "EvilBot/1.0"), vec![2]);
    assert!(ix.lookup_ids(IocKind::UserAgent, "evilbot/1.0").is_empty());
    assert_eq!(ix.lookup_ids(IocKind::Ja3, &ja3.to_uppercase()), vec![3]);
}

#[test]
fn one_value_from_several_iocs_returns_every_id_once() {
    let mut b = IocIndex::builder();
    for id in [4, 9, 4, 2] {
        b.add(id, IocKind::Domain, "evil.com").unwrap();
    }
    b.add(7, IocKind::Ip, "192.0.2.1").unwrap();
    b.add(8, IocKind::Ip, "192.0.2.1").unwrap();
    let ix = b.build();
    assert_eq!(ix.lookup_ids(IocKind::Domain, "evil.com"), vec![2, 4, 9]);
    assert_eq!(ix.lookup_ids(IocKind::Ip, "192.0.2.1"), vec![7, 8]);
    assert_eq!(ix.len(), 2);
}

#[test]
fn bad_values_and_ids_are_errors_and_iocs_index_by_position() {
    let mut b = IocIndex::builder();
    assert!(matches!(
        b.add(0, IocKind::Sha1, "abc"),
        Err(IntelError::InvalidValue { .. })
    ));
    assert_eq!(
        b.add(1 << 31, IocKind::Ip, "192.0.2.1"),
        Err(IntelError::IdTooLarge(1 << 31))
    );
    let iocs = vec![
        Ioc::new(IocKind::Domain, "evil.com").unwrap(),
        Ioc::new(IocKind::Ip, "192.0.2.0/24").unwrap(),
    ];
    assert_eq!(iocs[1].kind, IocKind::Cidr);
    let (ix, errors) = IocIndex::from_iocs(&iocs);
    assert!(errors.is_empty());
    assert_eq!(ix.lookup_ids(IocKind::Ip, "192.0.2.200"), vec![1]);
    assert!(IocIndex::builder().build().is_empty());
}
