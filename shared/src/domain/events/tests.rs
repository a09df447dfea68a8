use super::*;

#[test]
fn every_route_takes_its_types_and_every_type_has_one_route() {
    let all = [Route::Appointments, Route::Cancellations, Route::Calls, Route::Packages];
    let listed: Vec<&str> = all.iter().flat_map(|r| r.event_types().iter().copied()).collect();
    assert_eq!(listed.len(), EventBody::KINDS.len());
    for kind in EventBody::KINDS {
        assert_eq!(listed.iter().filter(|k| *k == kind).count(), 1, "{kind}");
    }
    assert_eq!(Route::Calls.event_types(), ["call.completed"]);
    assert_eq!(
        Route::Cancellations.event_types(),
        ["appointment.cancelled", "package_visit.cancelled", "package.cancelled", "case.reopen"]
    );
}

#[test]
fn an_event_reads_and_writes_as_its_type_and_data() {
    let json = serde_json::json!({"package.paid": {"package_id": "P1"}});
    let body: EventBody = serde_json::from_value(json.clone()).unwrap();
    assert_eq!(body, EventBody::Package(PackageEvent::Paid(PackagePaid { package_id: "P1".into() })));
    assert_eq!((body.kind(), serde_json::to_value(&body).unwrap()), ("package.paid", json));
    assert!(serde_json::from_value::<EventBody>(serde_json::json!({"package.lost": {}})).is_err());
}

#[test]
fn a_resolution_names_its_kind_as_the_wire_does() {
    let t = DateTime::parse_from_rfc3339("2026-03-02T10:00:00+02:00").unwrap().with_timezone(&Utc);
    for r in [
        Resolution::Rebooked { window_start: t, window_end: t },
        Resolution::Declined { reason: "x".into(), complaint: false, follow_up: false },
        Resolution::FollowUpLater { at: t },
        Resolution::WillPay,
    ] {
        assert_eq!(serde_json::to_value(&r).unwrap()["kind"], r.kind());
    }
}
