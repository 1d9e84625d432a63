//! Issue 11 end to end with standard peers and no project-specific flags: RFC 7616 §3.4.6 (a
//! digest `uri` naming this server identifies the registrar; one naming another resource gets
//! 400 and is counted), and RFC 3261 §10.2 / §16.5 with RFC 5626 §5.3 (requests reach the
//! Contact of a device registered by another agent unless `sip.nat_traversal = "always"`).
//!
//! Needs `sipp` on PATH (Debian package `sip-tester`); without it these tests fail loudly.

mod common;

use common::*;

/// The value of `cusax_sip_digest_uri_refused_total{role="ROLE"}` on `/metrics` (0 if absent).
fn digest_uri_refusals(lab: &Lab, role: &str) -> u64 {
    let (status, body) = cusax_testkit::https(&lab.srv, DOMAIN, "GET", "/metrics", &[]);
    assert_eq!(status, 200, "{body}");
    let prefix = format!("cusax_sip_digest_uri_refused_total{{role=\"{role}\"}} ");
    body.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

#[test]
fn plain_sipp_authentication_registers() {
    let lab = Lab::new();
    for t in ["u1", "t1"] {
        // No -auth_uri: sipp puts `sip:127.0.0.1:PORT` (the registrar's address) in the digest.
        let ok = lab.register_as("register_digest.xml", t, free_port(), &[]);
        assert!(
            ok,
            "{t}: plain [authentication] gets 200\n{}",
            lab.srv.log()
        );
    }
    assert_eq!(digest_uri_refusals(&lab, "registrar"), 0);
}

#[test]
fn a_digest_uri_naming_another_user_or_host_gets_400_and_is_counted() {
    let lab = Lab::new();
    let others = [
        format!("user3@{DOMAIN}"),
        "other.example".to_owned(),
        // Our address at a port that is not ours: another server on this host.
        "127.0.0.1:1".to_owned(),
    ];
    for uri in &others {
        let ok = lab.register_as(
            "register_bad_digest_uri.xml",
            "u1",
            free_port(),
            &["-auth_uri", uri],
        );
        assert!(ok, "digest uri sip:{uri}: 400 expected\n{}", lab.srv.log());
    }
    assert_eq!(
        digest_uri_refusals(&lab, "registrar"),
        others.len() as u64,
        "every refusal counted"
    );
    // Nothing was bound: a query lists no binding of user2.
    let (status, body) = bindings(&lab);
    assert_eq!(status, 200, "{body}");
    assert!(!body.contains("user2"), "no binding was made: {body}");
}

/// `GET /admin/v1/bindings` with the admin token.
fn bindings(lab: &Lab) -> (u16, String) {
    let token = std::fs::read_to_string(lab.srv.data_dir.join("admin.token")).expect("token");
    let auth = format!("Authorization: Bearer {}", token.trim());
    cusax_testkit::https(
        &lab.srv,
        DOMAIN,
        "GET",
        "/admin/v1/bindings",
        &["-H", &auth],
    )
}

/// Registers user2 from `from` (a sipp that then exits) with its Contact at `contact` (where
/// another sipp will listen), both on 127.0.0.1.
fn register_from_other_port(lab: &Lab, from: u16, contact: u16) {
    let addr = format!("127.0.0.1:{contact}");
    let ok = lab.register_as(
        "register_contact_elsewhere.xml",
        "u1",
        from,
        &["-i", "127.0.0.1", "-key", "contact_addr", &addr],
    );
    assert!(ok, "registration agent registers\n{}", lab.srv.log());
}

#[test]
fn a_device_registered_by_another_agent_gets_its_calls_at_its_contact() {
    let lab = Lab::new();
    let (agent, device) = (free_port(), free_port());
    register_from_other_port(&lab, agent, device);
    // Nobody may answer at the agent's port: a witness listens there.
    let w = witness(&lab, agent);
    // The device answers on its Contact port; the caller gets 200 and its BYE gets 200.
    lab.pair("uac_call_auth.xml", "uas_answer.xml", "u1", device);
    let trace = probe_witness(&lab, w, agent);
    assert!(
        !trace.contains("INVITE"),
        "the call went to the registration agent's port:\n{trace}"
    );
}

#[test]
fn nat_traversal_always_sends_calls_to_the_register_source() {
    let lab = Lab::with_config("[sip]\nnat_traversal = \"always\"\n");
    let (agent, device) = (free_port(), free_port());
    register_from_other_port(&lab, agent, device);
    let w = witness(&lab, device);
    // The old behaviour: the call reaches the REGISTER's source port, where a UAS answers.
    lab.pair("uac_call_auth.xml", "uas_answer.xml", "u1", agent);
    let trace = probe_witness(&lab, w, device);
    assert!(
        !trace.contains("INVITE"),
        "the call went to the Contact despite nat_traversal = \"always\":\n{trace}"
    );
}
