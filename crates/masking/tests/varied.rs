//! Our own cases, in the shapes real audit traffic takes: camelCase keys,
//! nested arrays, logfmt lines, HTTP headers, stack traces, URLs, numbers,
//! and hard negatives (ids, hashes, versions, timestamps, order numbers
//! that fail Luhn) that must survive verbatim.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr
)]

mod common;

use std::collections::BTreeMap;

use cairn_masking::{ContentType, Masker, Policy, TokenKeys};
use common::{Score, strings_of};

struct Case {
    event: &'static str,
    text: bool,
    pii: &'static [(&'static str, &'static str)],
    keep: &'static [&'static str],
}

const fn j(
    event: &'static str,
    pii: &'static [(&'static str, &'static str)],
    keep: &'static [&'static str],
) -> Case {
    Case {
        event,
        text: false,
        pii,
        keep,
    }
}

const fn t(
    event: &'static str,
    pii: &'static [(&'static str, &'static str)],
    keep: &'static [&'static str],
) -> Case {
    Case {
        event,
        text: true,
        pii,
        keep,
    }
}

const CASES: &[Case] = &[
    j(
        r#"{"userEmail":"Ana.Lopez+billing@corp.example.com","eventTime":"2026-01-02T03:04:05.123Z","requestId":"7f9c2ba4-e88f-11ee-a506-0242ac120002"}"#,
        &[("email", "Ana.Lopez+billing@corp.example.com")],
        &[
            "2026-01-02T03:04:05.123Z",
            "7f9c2ba4-e88f-11ee-a506-0242ac120002",
        ],
    ),
    j(
        r#"{"actor":{"firstName":"Søren","lastName":"Kierkegaard","displayName":"Søren K."},"tenant":"acme-prod"}"#,
        &[
            ("name", "Søren"),
            ("name", "Kierkegaard"),
            ("name", "Søren K."),
        ],
        &["acme-prod"],
    ),
    j(
        r#"{"recipients":[{"email":"a.one@example.org"},{"email":"b.two@example.net"}],"count":2}"#,
        &[
            ("email", "a.one@example.org"),
            ("email", "b.two@example.net"),
        ],
        &[],
    ),
    j(
        r#"{"payment":{"cardNumber":"5555555555554444","expiry":"12/29","orderNo":"4111111111111112"}}"#,
        &[("credit_card", "5555555555554444")],
        &["12/29", "4111111111111112"],
    ),
    j(
        r#"{"pan":4012888888881881,"amount_cents":129900,"merchant_id":998877665544}"#,
        &[("credit_card", "4012888888881881")],
        &["129900", "998877665544"],
    ),
    j(
        r#"{"note":"refund to card 4000 0566 5566 5556 approved by ops","build":"1.24.7"}"#,
        &[("credit_card", "4000 0566 5566 5556")],
        &["1.24.7"],
    ),
    j(
        r#"{"contact":{"mobile":"+61 412 345 678","home":"(02) 9876 5432","uk":"+44 7700 900123"}}"#,
        &[
            ("phone", "+61 412 345 678"),
            ("phone", "(02) 9876 5432"),
            ("phone", "+44 7700 900123"),
        ],
        &[],
    ),
    j(
        r#"{"msg":"callback requested on 020 7946 0958 or +33 1 23 45 67 89 before 2026-03-01"}"#,
        &[("phone", "020 7946 0958"), ("phone", "+33 1 23 45 67 89")],
        &["2026-03-01"],
    ),
    j(
        r#"{"msg":"US support line 415-555-0132, fax 415.555.0199, epoch 1767225600"}"#,
        &[("phone", "415-555-0132"), ("phone", "415.555.0199")],
        &["1767225600"],
    ),
    j(
        r#"{"applicant":{"ssn":"123456789","taxId":"98-7654321","dob":"1988-02-29"}}"#,
        &[
            ("ssn", "123456789"),
            ("tax_id", "98-7654321"),
            ("dob", "1988-02-29"),
        ],
        &[],
    ),
    j(
        r#"{"text":"SSN on file: 078-05-1120; invalid ones 000-12-3456 and 666-12-3456 are not SSNs"}"#,
        &[("ssn", "078-05-1120")],
        &["000-12-3456", "666-12-3456"],
    ),
    j(
        r#"{"beneficiary":"DE89 3704 0044 0532 0130 00","ref":"INV-2026-0042"}"#,
        &[("iban", "DE89 3704 0044 0532 0130 00")],
        &["INV-2026-0042"],
    ),
    j(
        r#"{"wire":"sent to FR1420041010050500013M02606 today","bic":"BNPAFRPP"}"#,
        &[("iban", "FR1420041010050500013M02606")],
        &["BNPAFRPP"],
    ),
    j(
        r#"{"client":{"ip":"10.20.30.40","forwardedFor":"198.51.100.7, 203.0.113.9"},"version":"10.20.30"}"#,
        &[
            ("ipv4", "10.20.30.40"),
            ("ipv4", "198.51.100.7"),
            ("ipv4", "203.0.113.9"),
        ],
        &["10.20.30"],
    ),
    j(
        r#"{"peer":"fe80::1ff:fe23:4567:890a","v6":"2001:0db8:85a3:0000:0000:8a2e:0370:7334","at":"12:30:45"}"#,
        &[
            ("ipv6", "fe80::1ff:fe23:4567:890a"),
            ("ipv6", "2001:0db8:85a3:0000:0000:8a2e:0370:7334"),
        ],
        &["12:30:45"],
    ),
    j(
        r#"{"headers":{"Authorization":"Bearer abcDEF123456ghiJKL","Cookie":"session=0a1b2c3d4e5f","User-Agent":"curl/8.5.0"}}"#,
        &[
            ("bearer_token", "abcDEF123456ghiJKL"),
            ("password", "0a1b2c3d4e5f"),
        ],
        &["curl/8.5.0"],
    ),
    j(
        r#"{"cfg":{"GITHUB_TOKEN":"ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789","region":"us-east-1"}}"#,
        &[("github_token", "ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789")],
        &["us-east-1"],
    ),
    j(
        r#"{"log":"using gitlab token glpat-xYz12345678901234567 and slack xoxb-123456789012-abcdefghij"}"#,
        &[
            ("gitlab_token", "glpat-xYz12345678901234567"),
            ("slack_token", "xoxb-123456789012-abcdefghij"),
        ],
        &[],
    ),
    j(
        r#"{"maps_key":"AIzaSyA1234567890abcdefghijklmnopqrstuv","stripe":"rk_live_51H8abcdEFGHijklMNOP"}"#,
        &[
            ("google_api_key", "AIzaSyA1234567890abcdefghijklmnopqrstuv"),
            ("stripe_key", "rk_live_51H8abcdEFGHijklMNOP"),
        ],
        &[],
    ),
    j(
        r#"{"aws":{"accessKeyId":"ASIAY34FZKBOKMUTVV7A","secretAccessKey":"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}}"#,
        &[
            ("aws_access_key", "ASIAY34FZKBOKMUTVV7A"),
            ("aws_secret", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
        ],
        &[],
    ),
    j(
        r#"{"key":"-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7x\n-----END RSA PRIVATE KEY-----","cert":"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"}"#,
        &[("private_key", "MIIEowIBAAKCAQEA7x")],
        &["-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"],
    ),
    j(
        r#"{"dsn":"postgres://app_user:S3cr3t!pw@db.internal:5432/app","public":"https://example.com/docs"}"#,
        &[("url_credentials", "S3cr3t!pw")],
        &["https://example.com/docs", "db.internal:5432/app"],
    ),
    j(
        r#"{"jwt":"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"}"#,
        &[(
            "jwt",
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
        )],
        &[],
    ),
    j(
        r#"{"stack":"java.lang.IllegalStateException: user bob.smith@example.com not found\n\tat com.acme.Users.find(Users.java:42)\n\tat com.acme.Api.handle(Api.java:108)"}"#,
        &[("email", "bob.smith@example.com")],
        &["com.acme.Users.find(Users.java:42)", "Api.java:108"],
    ),
    j(
        r#"{"deep":{"a":[{"b":[{"c":{"userPassword":"hunter2hunter2"}}]}]},"sha":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}"#,
        &[("password", "hunter2hunter2")],
        &["9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"],
    ),
    j(
        r#"{"alice.martin@example.com":{"role":"admin"},"node":"web-01.prod.example.net"}"#,
        &[("email", "alice.martin@example.com")],
        &["web-01.prod.example.net", "admin"],
    ),
    j(
        r#"{"query":"/api/login?user=jdoe&password=Tr0ub4dor&3&next=/home","status":302}"#,
        &[("secret", "Tr0ub4dor")],
        &["302"],
    ),
    j(
        r#"{"order_id":"2269060443198296","sku":"SKU-0251-L","amount":"42748.92","git":"5da2cec255404e4fb440034d6608697a8d41bed4"}"#,
        &[],
        &[
            "2269060443198296",
            "SKU-0251-L",
            "42748.92",
            "5da2cec255404e4fb440034d6608697a8d41bed4",
        ],
    ),
    j(
        // A MAC address identifies a device, and so its owner (GDPR
        // recital 30): masked since detector set 3.
        r#"{"image":"registry.example.com/app:7.14.61","mac":"00:1a:2b:3c:4d:5e","trace":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}"#,
        &[("mac_address", "00:1a:2b:3c:4d:5e")],
        &[
            "registry.example.com/app:7.14.61",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ],
    ),
    j(
        r#"{"tokens_used":1532,"model":"gpt-x","latency_ms":87.5,"ok":true,"nothing":null}"#,
        &[],
        &["1532", "gpt-x", "87.5"],
    ),
    t(
        "level=warn ts=2026-05-01T10:00:00Z msg=\"login failed\" user=carol@example.io src_ip=192.0.2.44 api_key=sk_test_4eC39HqLyjWDarjtT1zdp7dc",
        &[
            ("email", "carol@example.io"),
            ("ipv4", "192.0.2.44"),
            ("stripe_key", "sk_test_4eC39HqLyjWDarjtT1zdp7dc"),
        ],
        &["2026-05-01T10:00:00Z", "login failed"],
    ),
    t(
        "POST /v1/charges HTTP/1.1\r\nHost: api.example.com\r\nAuthorization: Basic dXNlcjpwYXNzd29yZDEyMw==\r\nX-Request-Id: 0c9d2a8e\r\n",
        &[("bearer_token", "dXNlcjpwYXNzd29yZDEyMw==")],
        &["api.example.com", "0c9d2a8e", "/v1/charges"],
    ),
    t(
        "Traceback (most recent call last):\n  File \"app.py\", line 10, in <module>\nValueError: bad phone +1 (212) 555-0188 for user 42",
        &[("phone", "+1 (212) 555-0188")],
        &["app.py", "line 10"],
    ),
    t(
        "db connect password: 'correct horse battery' secret=abc123XYZ token: ab12cd34ef56",
        &[
            ("secret", "correct horse battery"),
            ("secret", "abc123XYZ"),
            ("secret", "ab12cd34ef56"),
        ],
        &["db connect"],
    ),
    t(
        "card charged 3782-822463-10005 (amex) ref 1234-5678-9012-3456 ver 2.0.1",
        &[("credit_card", "3782-822463-10005")],
        &["1234-5678-9012-3456", "2.0.1"],
    ),
    // Issue 17: international numbers dialled with 00 or 011 (ITU-T
    // E.164's prefix and NANP's), in groups; and numbers that look alike
    // but have no assigned country code, or no NANP shape, kept.
    t(
        "callback 0044 20 7946 0958, fax 0049 30 901820; US desk 011 44 20 7946 0959; FR 00 33 1 23 45 67 89, AU 0061.2.9876.5432, RU 007-495-123-45-67",
        &[
            ("phone", "0044 20 7946 0958"),
            ("phone", "0049 30 901820"),
            ("phone", "011 44 20 7946 0959"),
            ("phone", "00 33 1 23 45 67 89"),
            ("phone", "0061.2.9876.5432"),
            ("phone", "007-495-123-45-67"),
        ],
        &["callback", "US desk"],
    ),
    // Issue 17: Spain's identifiers after their names: an NIE
    // (foreigners), a DNI, and a person's NIF (the DNI). German "nie"
    // ("never") announces nothing that fails the check letter.
    t(
        "Extranjero con NIE: X1234567L, titular DNI 12345678Z, NIF 12345678-Z; das war nie 12345678A",
        &[
            ("national_id", "X1234567L"),
            ("national_id", "12345678Z"),
            ("national_id", "12345678-Z"),
        ],
        &["Extranjero con NIE", "titular", "das war nie 12345678A"],
    ),
    // Issue 17: extensions (NANP's "x"/"ext." and RFC 3966's ";ext="),
    // tel: URIs, and national numbers with a trunk 0 and long groups.
    t(
        "desk (212) 555-0188 ext. 12, cell +1-415-555-0132;ext=77, line 020 7946 0958 x 3, tel:+44-20-7946-0959, Berlin 030 4270443, build x86 2.0.1 took 1234 ms",
        &[
            ("phone", "(212) 555-0188 ext. 12"),
            ("phone", "+1-415-555-0132;ext=77"),
            ("phone", "020 7946 0958 x 3"),
            ("phone", "+44-20-7946-0959"),
            ("phone", "030 4270443"),
        ],
        &["desk", "cell", "line", "build x86 2.0.1 took 1234 ms"],
    ),
    j(
        r#"{"invoice":"0012 3456 7890","batch":"0028 1234 5678","lot":"00-00-1234-5678","contact":{"tel":"0033 6 12 34 56 78"}}"#,
        &[("phone", "0033 6 12 34 56 78")],
        &["0012 3456 7890", "0028 1234 5678", "00-00-1234-5678"],
    ),
    // Issue 17: national identifiers under fields named for them.
    j(
        r#"{"patient":{"nhsNumber":"943 476 5919","passportNumber":"C01X00T47","bsn":"111222333","pesel":"44051401359"},"ward":"B12"}"#,
        &[
            ("national_id", "943 476 5919"),
            ("national_id", "C01X00T47"),
            ("national_id", "111222333"),
            ("national_id", "44051401359"),
        ],
        &["B12"],
    ),
    // Issue 17: passwords in URLs and DSNs hold URL-reserved characters,
    // unencoded, as logs print them; the userinfo ends at the last `@`
    // before the host.
    j(
        r#"{"pg":"postgres://svc:p#ss/w?rd@db.internal:5432/app","redis":"redis://:s3cr&t!%*@cache:6379/0","mongo":"mongodb://admin:P@ss@w0rd@mongo1:27017,mongo2:27017/?replicaSet=rs0","amqp":"amqp://guest:gu*st!x@rabbit/vhost","jdbc":"jdbc:postgresql://app:Pa55#word!@db:5432/x"}"#,
        &[
            ("url_credentials", "p#ss/w?rd"),
            ("url_credentials", "s3cr&t!%*"),
            ("url_credentials", "P@ss@w0rd"),
            ("url_credentials", "gu*st!x"),
            ("url_credentials", "Pa55#word!"),
        ],
        &[
            "db.internal:5432/app",
            "cache:6379/0",
            "mongo1:27017,mongo2:27017/?replicaSet=rs0",
            "rabbit/vhost",
        ],
    ),
    t(
        "fetched https://registry.npmjs.org:443/@scope/pkg and https://example.com/@alice/status/1 via ftp://mirror/a:b@c; odbc Driver={ODBC Driver 18};Server=db;Uid=sa;Pwd=Secr3t!#x;",
        &[("secret", "Secr3t!#x")],
        &[
            "https://registry.npmjs.org:443/@scope/pkg",
            "https://example.com/@alice/status/1",
            "ftp://mirror/a:b@c",
        ],
    ),
];

#[test]
fn varied_cases_recall_and_precision() {
    let masker = Masker::new(
        Policy::default_policy().unwrap(),
        &TokenKeys::new(),
        "test.example/log",
    )
    .unwrap();
    let mut score: BTreeMap<&str, Score> = BTreeMap::new();
    let mut keep = Score::default();
    let mut failures = Vec::new();
    for (n, c) in CASES.iter().enumerate() {
        let ct = if c.text {
            ContentType::Text
        } else {
            ContentType::Json
        };
        let m = masker
            .mask(c.event.as_bytes(), ct, 1, &mut || [0u8; 16])
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(m.body()).unwrap();
        let out = strings_of(&body);
        for (ty, v) in c.pii {
            let s = score.entry(ty).or_default();
            s.total += 1;
            if out.iter().any(|o| o.contains(v)) {
                s.failed += 1;
                failures.push(format!("case {n}: {ty} leaked"));
            }
        }
        for v in c.keep {
            keep.total += 1;
            if !out.iter().any(|o| o.contains(v)) {
                keep.failed += 1;
                failures.push(format!("case {n}: keep value {v:?} lost"));
            }
        }
    }
    eprintln!("\n| type | values | leaked |\n|---|---|---|");
    for (t, s) in &score {
        eprintln!("| {t} | {} | {} |", s.total, s.failed);
    }
    eprintln!("| keep | {} | {} lost |", keep.total, keep.failed);
    assert!(failures.is_empty(), "{failures:#?}");
}
