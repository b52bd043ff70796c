//! Console users over real HTTP against SQLite and Postgres: signing in and out,
//! the session cookie and its CSRF token, the sign-in throttle, password changes,
//! and every route checked against every role (the API enforces roles; the console
//! only hides what a role cannot do).

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use lorikeet_api::ApiState;
use lorikeet_storage::testing::TestDb;
use lorikeet_storage::{storage_test, Storage};
use reqwest::Method;
use serde_json::{json, Value};
use tokio::sync::oneshot;

const ADMIN: &str = "admin-secret-token";
const PASSWORD: &str = "correct horse battery";

struct Server {
    base: String,
    client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
}

/// Who sends a request.
#[derive(Clone)]
enum As {
    Admin,
    Anonymous,
    /// A session: the cookie value and the CSRF token.
    User {
        cookie: String,
        csrf: String,
    },
    /// A session's cookie without its CSRF token.
    NoCsrf(String),
}

async fn start(storage: Arc<dyn Storage>) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(lorikeet_api::serve(
        listener,
        ApiState::new(storage, Some(ADMIN)),
        async move {
            let _ = stopped.await;
        },
    ));
    Server {
        base: format!("http://{addr}"),
        client: reqwest::Client::new(),
        stop: Some(stop),
    }
}

impl Server {
    async fn call(
        &self,
        who: &As,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        match who {
            As::Admin => req = req.bearer_auth(ADMIN),
            As::Anonymous => {}
            As::User { cookie, csrf } => {
                req = req
                    .header("cookie", format!("lorikeet_session={cookie}"))
                    .header("x-csrf-token", csrf)
            }
            As::NoCsrf(cookie) => req = req.header("cookie", format!("lorikeet_session={cookie}")),
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn admin(&self, method: Method, path: &str, body: Value) -> Value {
        let (st, v) = self
            .call(&As::Admin, method.clone(), path, Some(body))
            .await;
        assert!(st == 200 || st == 201, "{method} {path}: {st} {v}");
        v
    }

    /// Signs in over `POST /api/v1/login`: status, body and the session cookie.
    async fn login(&self, email: &str, password: &str) -> (u16, Value, Option<String>) {
        let resp = self
            .client
            .post(format!("{}/api/v1/login", self.base))
            .json(&json!({"email": email, "password": password}))
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let cookie = resp
            .headers()
            .get("set-cookie")
            .map(|v| v.to_str().unwrap().to_owned());
        if let Some(c) = &cookie {
            assert!(
                c.contains("HttpOnly") && c.contains("SameSite=Strict") && c.contains("Path=/"),
                "{c}"
            );
        }
        let value = cookie.as_deref().and_then(|c| {
            c.split(';')
                .next()
                .and_then(|kv| kv.strip_prefix("lorikeet_session="))
                .map(str::to_owned)
        });
        (status, resp.json().await.unwrap_or(Value::Null), value)
    }

    /// A user created by the admin with `roles`, signed in.
    async fn user(&self, email: &str, roles: Value) -> As {
        self.admin(
            Method::POST,
            "/api/v1/users",
            json!({"email": email, "password": PASSWORD, "roles": roles}),
        )
        .await;
        let (st, me, cookie) = self.login(email, PASSWORD).await;
        assert_eq!(st, 200, "{me}");
        As::User {
            cookie: cookie.unwrap(),
            csrf: me["csrfToken"].as_str().unwrap().to_owned(),
        }
    }

    fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

storage_test!(
    signing_in_and_out_with_a_session_cookie,
    |db: TestDb| async move {
        let s = start(db.storage.clone()).await;
        let created = s
            .admin(
                Method::POST,
                "/api/v1/users",
                json!({"email": " Ann@Example.COM ", "password": PASSWORD, "isAdmin": true}),
            )
            .await;
        assert_eq!(created["email"], "ann@example.com");
        assert!(created.get("password").is_none() && created.get("passwordHash").is_none());
        // The same email twice: 409.
        let (st, _) = s
            .call(
                &As::Admin,
                Method::POST,
                "/api/v1/users",
                Some(json!({"email": "ann@example.com", "password": PASSWORD})),
            )
            .await;
        assert_eq!(st, 409);
        // Too short a password, not an email: 400 with the reason.
        for (body, says) in [
            (
                json!({"email": "b@example.com", "password": "short"}),
                "at least 8",
            ),
            (
                json!({"email": "no-at-sign", "password": PASSWORD}),
                "not an email",
            ),
        ] {
            let (st, v) = s
                .call(&As::Admin, Method::POST, "/api/v1/users", Some(body))
                .await;
            assert_eq!(st, 400, "{v}");
            assert!(v["error"].as_str().unwrap().contains(says), "{v}");
        }

        // A sign-in posted from another site's page is refused (login CSRF).
        let r = s
            .client
            .post(format!("{}/api/v1/login", s.base))
            .header("origin", "https://evil.example")
            .json(&json!({"email": "ann@example.com", "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 403);
        assert!(r.headers().get("set-cookie").is_none());
        let same = s.base.replace("http://", "");
        let r = s
            .client
            .post(format!("{}/api/v1/login", s.base))
            .header("origin", format!("http://{same}"))
            .json(&json!({"email": "ann@example.com", "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "the console's own origin");

        // Wrong password and unknown email answer alike.
        let (st, v, cookie) = s.login("ann@example.com", "wrong password").await;
        assert_eq!((st, cookie), (401, None));
        let (st2, v2, _) = s.login("nobody@example.com", PASSWORD).await;
        assert_eq!((st2, &v2), (401, &v));

        let (st, me, cookie) = s.login("ANN@example.com", PASSWORD).await;
        assert_eq!(st, 200, "{me}");
        let cookie = cookie.unwrap();
        let csrf = me["csrfToken"].as_str().unwrap().to_owned();
        let user = As::User {
            cookie: cookie.clone(),
            csrf: csrf.clone(),
        };
        let (st, again) = s.call(&user, Method::GET, "/api/v1/me", None).await;
        assert_eq!(st, 200);
        assert_eq!(again["csrfToken"], csrf.as_str());
        assert_eq!(
            (again["kind"].as_str(), again["isAdmin"].as_bool()),
            (Some("user"), Some(true))
        );

        // A change needs the session's CSRF token; a read does not.
        let (st, v) = s
            .call(
                &As::NoCsrf(cookie.clone()),
                Method::POST,
                "/api/v1/tenants",
                Some(json!({"name": "x"})),
            )
            .await;
        assert_eq!(st, 403, "{v}");
        assert!(v["error"].as_str().unwrap().contains("X-CSRF-Token"));
        let wrong = As::User {
            cookie: cookie.clone(),
            csrf: "0".repeat(64),
        };
        let (st, _) = s
            .call(
                &wrong,
                Method::POST,
                "/api/v1/tenants",
                Some(json!({"name": "x"})),
            )
            .await;
        assert_eq!(st, 403);
        let (st, _) = s
            .call(
                &user,
                Method::POST,
                "/api/v1/tenants",
                Some(json!({"name": "x"})),
            )
            .await;
        assert_eq!(st, 201, "an admin user administers");
        let (st, _) = s
            .call(
                &As::NoCsrf(cookie.clone()),
                Method::GET,
                "/api/v1/tenants",
                None,
            )
            .await;
        assert_eq!(st, 200);

        // Signing out ends the session for every later request.
        let (st, _) = s.call(&user, Method::POST, "/api/v1/logout", None).await;
        assert_eq!(st, 204);
        let (st, v) = s.call(&user, Method::GET, "/api/v1/me", None).await;
        assert_eq!(st, 401, "{v}");
        let (st, _) = s
            .call(&As::Anonymous, Method::GET, "/api/v1/me", None)
            .await;
        assert_eq!(st, 401);
        s.stop();
    }
);

storage_test!(failed_sign_ins_are_throttled, |db: TestDb| async move {
    let s = start(db.storage.clone()).await;
    s.admin(
        Method::POST,
        "/api/v1/users",
        json!({"email": "cy@example.com", "password": PASSWORD}),
    )
    .await;
    for _ in 0..5 {
        assert_eq!(s.login("cy@example.com", "guess guess").await.0, 401);
    }
    // Past the limit even the right password waits.
    let (st, v, cookie) = s.login("cy@example.com", PASSWORD).await;
    assert_eq!((st, cookie), (429, None), "{v}");
    assert!(v["error"].as_str().unwrap().contains("try again in"), "{v}");
    s.stop();
});

storage_test!(
    a_new_password_ends_the_other_sessions,
    |db: TestDb| async move {
        let s = start(db.storage.clone()).await;
        let first = s.user("dee@example.com", json!([])).await;
        let (_, me, second) = s.login("dee@example.com", PASSWORD).await;
        let second = As::User {
            cookie: second.unwrap(),
            csrf: me["csrfToken"].as_str().unwrap().to_owned(),
        };
        let (st, v) = s
            .call(
                &first,
                Method::PUT,
                "/api/v1/me/password",
                Some(json!({"currentPassword": "not it", "newPassword": "another good one"})),
            )
            .await;
        assert_eq!(st, 403, "{v}");
        let (st, v) = s
            .call(
                &first,
                Method::PUT,
                "/api/v1/me/password",
                Some(json!({"currentPassword": PASSWORD, "newPassword": "another good one"})),
            )
            .await;
        assert_eq!(st, 204, "{v}");
        assert_eq!(s.call(&first, Method::GET, "/api/v1/me", None).await.0, 200);
        assert_eq!(
            s.call(&second, Method::GET, "/api/v1/me", None).await.0,
            401
        );
        assert_eq!(s.login("dee@example.com", PASSWORD).await.0, 401);
        assert_eq!(s.login("dee@example.com", "another good one").await.0, 200);
        s.stop();
    }
);

/// One tenant's resources, made by the admin: (tenant, application, profile,
/// device EUI, gateway EUI).
async fn tenant_with_things(s: &Server, n: u8) -> (String, String, String, String, String) {
    let t = s
        .admin(
            Method::POST,
            "/api/v1/tenants",
            json!({"name": format!("t{n}")}),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let app = s
        .admin(
            Method::POST,
            "/api/v1/applications",
            json!({"name": "app", "tenantId": t}),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let profile = s
        .admin(
            Method::POST,
            "/api/v1/device-profiles",
            json!({"name": "p", "tenantId": t, "region": "EU868", "macVersion": "1.0.3",
                   "regParamsRevision": "RP002-1.0.3", "supportsOtaa": true}),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let dev = format!("01020304050607{n:02x}");
    s.admin(
        Method::POST,
        "/api/v1/devices",
        json!({"devEui": dev, "joinEui": "0000000000000000", "name": "d",
               "applicationId": app, "deviceProfileId": profile}),
    )
    .await;
    let gw = format!("a0a1a2a3a4a5a6{n:02x}");
    s.admin(
        Method::POST,
        "/api/v1/gateways",
        json!({"gatewayId": gw, "name": "g", "tenantId": t}),
    )
    .await;
    (t, app, profile, dev, gw)
}

/// Whether a status means "done" (as opposed to refused).
fn done(st: u16) -> bool {
    (200..300).contains(&st)
}

storage_test!(every_route_follows_the_role, |db: TestDb| async move {
    let s = start(db.storage.clone()).await;
    let (t, app, profile, dev, gw) = tenant_with_things(&s, 1).await;
    let (t2, other_app, _, other_dev, other_gw) = tenant_with_things(&s, 2).await;
    let rule = s
        .admin(
            Method::POST,
            "/api/v1/alert-rules",
            json!({"name": "quiet", "tenantId": t, "kind": "device_silent", "params": {"minutes": 30}}),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let other_rule = s
        .admin(
            Method::POST,
            "/api/v1/alert-rules",
            json!({"name": "theirs", "tenantId": t2, "kind": "device_silent", "params": {"minutes": 30}}),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let role = |r: &str| json!([{"tenantId": t, "role": r}]);
    let viewer = s.user("viewer@example.com", role("viewer")).await;
    let manager = s.user("manager@example.com", role("device_manager")).await;
    let tenant_admin = s.user("tadmin@example.com", role("admin")).await;

    // Reads: every role.
    let reads = [
        "/api/v1/tenants".to_string(),
        format!("/api/v1/tenants/{t}"),
        "/api/v1/applications".into(),
        format!("/api/v1/applications/{app}"),
        "/api/v1/device-profiles".into(),
        format!("/api/v1/device-profiles/{profile}"),
        "/api/v1/devices".into(),
        format!("/api/v1/devices/{dev}"),
        format!("/api/v1/devices/{dev}/queue"),
        format!("/api/v1/devices/{dev}/events"),
        "/api/v1/gateways".into(),
        format!("/api/v1/gateways/{gw}"),
        "/api/v1/api-keys".into(),
        "/api/v1/alert-rules".into(),
        format!("/api/v1/alert-rules/{rule}"),
        "/api/v1/alerts".into(),
    ];
    for who in [&viewer, &manager, &tenant_admin] {
        for path in &reads {
            let (st, v) = s.call(who, Method::GET, path, None).await;
            assert_eq!(st, 200, "GET {path}: {v}");
        }
        // Another tenant's things are invisible, exactly like missing ones.
        for path in [
            format!("/api/v1/applications/{other_app}"),
            format!("/api/v1/devices/{other_dev}"),
            format!("/api/v1/gateways/{other_gw}"),
            format!("/api/v1/alert-rules/{other_rule}"),
        ] {
            assert_eq!(s.call(who, Method::GET, &path, None).await.0, 404, "{path}");
        }
        let (_, rules) = s.call(who, Method::GET, "/api/v1/alert-rules", None).await;
        assert_eq!(rules["items"].as_array().unwrap().len(), 1, "{rules}");
        // A list shows only the user's tenant.
        let (_, devices) = s.call(who, Method::GET, "/api/v1/devices", None).await;
        let euis: Vec<_> = devices["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["devEui"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(euis, vec![dev.clone()]);
    }

    // Writes: (method, path, body, allowed for a device manager).
    let dev2 = "0102030405069999";
    let writes: Vec<(Method, String, Value, bool)> = vec![
        (
            Method::PUT,
            format!("/api/v1/devices/{dev}"),
            json!({"joinEui": "0000000000000000", "name": "renamed",
                   "applicationId": app, "deviceProfileId": profile}),
            true,
        ),
        (
            Method::PUT,
            format!("/api/v1/devices/{dev}/keys"),
            json!({"appKey": "000102030405060708090a0b0c0d0e0f"}),
            true,
        ),
        (
            Method::POST,
            format!("/api/v1/devices/{dev}/queue"),
            json!({"fPort": 10, "data": "AQI="}),
            true,
        ),
        (
            Method::DELETE,
            format!("/api/v1/devices/{dev}/queue"),
            Value::Null,
            true,
        ),
        // dev2 exists before each role's turn and again after it.
        (
            Method::DELETE,
            format!("/api/v1/devices/{dev2}"),
            Value::Null,
            true,
        ),
        (
            Method::POST,
            "/api/v1/devices".into(),
            json!({"devEui": dev2, "joinEui": "0000000000000000", "name": "new",
                   "applicationId": app, "deviceProfileId": profile}),
            true,
        ),
        (
            Method::PUT,
            format!("/api/v1/applications/{app}"),
            json!({"name": "renamed"}),
            false,
        ),
        (
            Method::POST,
            format!("/api/v1/applications/{app}/integrations/http"),
            json!({"url": "https://hooks.example.com/x"}),
            false,
        ),
        (
            Method::POST,
            "/api/v1/applications".into(),
            json!({"name": "new", "tenantId": t}),
            false,
        ),
        (
            Method::PUT,
            format!("/api/v1/gateways/{gw}"),
            json!({"name": "renamed"}),
            false,
        ),
        (
            Method::POST,
            "/api/v1/api-keys".into(),
            json!({"name": "k", "tenantId": t}),
            false,
        ),
        (
            Method::POST,
            "/api/v1/alert-rules".into(),
            json!({"name": "low battery", "tenantId": t, "kind": "battery_below",
                   "params": {"percent": 15}}),
            false,
        ),
        (
            Method::PUT,
            format!("/api/v1/alert-rules/{rule}"),
            json!({"name": "quieter", "kind": "device_silent", "params": {"minutes": 45}}),
            false,
        ),
        (
            Method::POST,
            "/api/v1/device-profiles".into(),
            json!({"name": "p2", "tenantId": t, "region": "EU868", "macVersion": "1.0.3",
                   "regParamsRevision": "RP002-1.0.3", "supportsOtaa": true}),
            false,
        ),
    ];
    s.admin(
        Method::POST,
        "/api/v1/devices",
        json!({"devEui": dev2, "joinEui": "0000000000000000", "name": "new",
               "applicationId": app, "deviceProfileId": profile}),
    )
    .await;
    let body = |b: &Value| (!b.is_null()).then(|| b.clone());
    for (method, path, b, _) in &writes {
        let (st, v) = s.call(&viewer, method.clone(), path, body(b)).await;
        assert_eq!(st, 403, "viewer {method} {path}: {v}");
        assert!(v["error"].as_str().unwrap().contains("viewer"), "{v}");
    }
    for (method, path, b, for_manager) in &writes {
        let (st, v) = s.call(&manager, method.clone(), path, body(b)).await;
        if *for_manager {
            assert!(done(st), "device manager {method} {path}: {st} {v}");
        } else {
            assert_eq!(st, 403, "device manager {method} {path}: {v}");
        }
    }
    for (method, path, b, _) in &writes {
        let (st, v) = s.call(&tenant_admin, method.clone(), path, body(b)).await;
        assert!(done(st), "tenant admin {method} {path}: {st} {v}");
    }
    // Writes into another tenant: 404 for every role.
    for who in [&manager, &tenant_admin] {
        let (st, _) = s
            .call(
                who,
                Method::PUT,
                &format!("/api/v1/applications/{other_app}"),
                Some(json!({"name": "mine"})),
            )
            .await;
        assert_eq!(st, 404);
        let (st, _) = s
            .call(
                who,
                Method::DELETE,
                &format!("/api/v1/devices/{other_dev}"),
                None,
            )
            .await;
        assert_eq!(st, 404);
        let (st, _) = s
            .call(
                who,
                Method::DELETE,
                &format!("/api/v1/alert-rules/{other_rule}"),
                None,
            )
            .await;
        assert_eq!(st, 404);
    }
    // Only administrators manage tenants and create administrators.
    for (method, path, b) in [
        (
            Method::POST,
            "/api/v1/tenants".to_string(),
            json!({"name": "x"}),
        ),
        (Method::DELETE, format!("/api/v1/tenants/{t}"), Value::Null),
        (
            Method::POST,
            "/api/v1/users".into(),
            json!({"email": "e@example.com", "password": PASSWORD, "isAdmin": true,
                   "roles": [{"tenantId": t, "role": "viewer"}]}),
        ),
    ] {
        let (st, v) = s.call(&tenant_admin, method.clone(), &path, body(&b)).await;
        assert_eq!(st, 403, "{method} {path}: {v}");
    }
    s.stop();
});

storage_test!(
    tenant_admins_manage_their_tenants_users,
    |db: TestDb| async move {
        let s = start(db.storage.clone()).await;
        let (t1, ..) = tenant_with_things(&s, 4).await;
        let (t2, ..) = tenant_with_things(&s, 5).await;
        let tadmin = s
            .user(
                "boss@example.com",
                json!([{"tenantId": t1, "role": "admin"}]),
            )
            .await;
        let manager = s
            .user(
                "dm@example.com",
                json!([{"tenantId": t1, "role": "device_manager"}]),
            )
            .await;
        let users = "/api/v1/users";
        // A user of their tenant: yes; a role elsewhere, an administrator, no role: no.
        let (st, made) = s
            .call(
                &tadmin,
                Method::POST,
                users,
                Some(json!({"email": "new@example.com", "password": PASSWORD,
                        "roles": [{"tenantId": t1, "role": "viewer"}]})),
            )
            .await;
        assert_eq!(st, 201, "{made}");
        let new_id = made["id"].as_str().unwrap().to_owned();
        for (body, status) in [
            (
                json!({"email": "x@example.com", "password": PASSWORD,
                   "roles": [{"tenantId": t2, "role": "viewer"}]}),
                403,
            ),
            (
                json!({"email": "x@example.com", "password": PASSWORD,
                   "roles": [{"tenantId": t1, "role": "viewer"}, {"tenantId": t2, "role": "viewer"}]}),
                403,
            ),
            (
                json!({"email": "x@example.com", "password": PASSWORD, "isAdmin": true,
                   "roles": [{"tenantId": t1, "role": "viewer"}]}),
                403,
            ),
            (json!({"email": "x@example.com", "password": PASSWORD}), 400),
        ] {
            let (st, v) = s
                .call(&tadmin, Method::POST, users, Some(body.clone()))
                .await;
            assert_eq!(st, status, "{body}: {v}");
        }
        // A device manager manages no users.
        let (st, _) = s
            .call(
                &manager,
                Method::POST,
                users,
                Some(json!({"email": "y@example.com", "password": PASSWORD,
                        "roles": [{"tenantId": t1, "role": "viewer"}]})),
            )
            .await;
        assert_eq!(st, 403);
        assert_eq!(s.call(&manager, Method::GET, users, None).await.0, 403);

        // Someone with roles in both tenants: the tenant administrator sees and changes
        // only the role in theirs.
        let both = s
        .admin(
            Method::POST,
            users,
            json!({"email": "both@example.com", "password": PASSWORD,
                   "roles": [{"tenantId": t1, "role": "viewer"}, {"tenantId": t2, "role": "admin"}]}),
        )
        .await;
        let both_id = both["id"].as_str().unwrap().to_owned();
        let (st, listed) = s.call(&tadmin, Method::GET, users, None).await;
        assert_eq!(st, 200, "{listed}");
        let items = listed["items"].as_array().unwrap();
        let emails: Vec<&str> = items.iter().map(|u| u["email"].as_str().unwrap()).collect();
        assert!(emails.contains(&"new@example.com") && emails.contains(&"both@example.com"));
        assert!(emails.contains(&"boss@example.com"), "{emails:?}");
        for u in items {
            for r in u["roles"].as_array().unwrap() {
                assert_eq!(
                    r["tenantId"],
                    t1.as_str(),
                    "another tenant's role shown: {u}"
                );
            }
        }
        let (st, _) = s
            .call(
                &tadmin,
                Method::GET,
                &format!("{users}?tenantId={t2}"),
                None,
            )
            .await;
        assert_eq!(st, 404, "not their tenant");
        let roles = format!("{users}/{both_id}/roles");
        let (st, v) = s
            .call(
                &tadmin,
                Method::PUT,
                &roles,
                Some(json!([{"tenantId": t1, "role": "device_manager"}])),
            )
            .await;
        assert_eq!(st, 200, "{v}");
        assert_eq!(v, json!([{"tenantId": t1, "role": "device_manager"}]));
        let seen_by_admin = s
            .admin(Method::GET, &format!("{users}/{both_id}"), Value::Null)
            .await;
        let mut expected = vec![
            json!({"tenantId": t1, "role": "device_manager"}),
            json!({"tenantId": t2, "role": "admin"}),
        ];
        expected.sort_by_key(|v| v["tenantId"].as_str().unwrap().to_owned());
        assert_eq!(
            seen_by_admin["roles"],
            json!(expected),
            "the t2 role is kept"
        );
        let (st, _) = s
            .call(
                &tadmin,
                Method::PUT,
                &roles,
                Some(json!([{"tenantId": t2, "role": "viewer"}])),
            )
            .await;
        assert_eq!(st, 403, "a role in another tenant");
        // A user of another tenant only is invisible; updating and deleting stay with
        // administrators.
        let other = s
            .admin(
                Method::POST,
                users,
                json!({"email": "other@example.com", "password": PASSWORD,
                   "roles": [{"tenantId": t2, "role": "viewer"}]}),
            )
            .await;
        let other_path = format!("{users}/{}", other["id"].as_str().unwrap());
        assert_eq!(s.call(&tadmin, Method::GET, &other_path, None).await.0, 404);
        let (st, _) = s
            .call(
                &tadmin,
                Method::PUT,
                &format!("{other_path}/roles"),
                Some(json!([{"tenantId": t1, "role": "viewer"}])),
            )
            .await;
        assert_eq!(st, 404);
        let new_path = format!("{users}/{new_id}");
        let (st, got) = s.call(&tadmin, Method::GET, &new_path, None).await;
        assert_eq!((st, got["email"].as_str()), (200, Some("new@example.com")));
        assert_eq!(
            s.call(&tadmin, Method::DELETE, &new_path, None).await.0,
            403
        );
        let (st, _) = s
            .call(
                &tadmin,
                Method::PUT,
                &new_path,
                Some(json!({"email": "new@example.com", "isAdmin": true})),
            )
            .await;
        assert_eq!(st, 403);
        // Removing their only role here makes the user invisible to the tenant admin.
        let (st, _) = s
            .call(
                &tadmin,
                Method::PUT,
                &format!("{new_path}/roles"),
                Some(json!([])),
            )
            .await;
        assert_eq!(st, 200);
        assert_eq!(s.call(&tadmin, Method::GET, &new_path, None).await.0, 404);
        s.stop();
    }
);

storage_test!(roles_apply_from_the_next_request, |db: TestDb| async move {
    let s = start(db.storage.clone()).await;
    let (t, app, ..) = tenant_with_things(&s, 3).await;
    let user = s
        .user("eve@example.com", json!([{"tenantId": t, "role": "admin"}]))
        .await;
    let (_, users) = s
        .call(
            &As::Admin,
            Method::GET,
            &format!("/api/v1/users?tenantId={t}"),
            None,
        )
        .await;
    let id = users["items"][0]["id"].as_str().unwrap().to_owned();
    let rename = || Some(json!({"name": "again"}));
    let path = format!("/api/v1/applications/{app}");
    assert!(done(s.call(&user, Method::PUT, &path, rename()).await.0));
    // Down to viewer: refused at once.
    let (st, roles) = s
        .call(
            &As::Admin,
            Method::PUT,
            &format!("/api/v1/users/{id}/roles"),
            Some(json!([{"tenantId": t, "role": "viewer"}])),
        )
        .await;
    assert_eq!(
        (st, roles),
        (200, json!([{"tenantId": t, "role": "viewer"}]))
    );
    assert_eq!(s.call(&user, Method::PUT, &path, rename()).await.0, 403);
    // No role: the tenant's things are gone from view.
    s.admin(Method::PUT, &format!("/api/v1/users/{id}/roles"), json!([]))
        .await;
    assert_eq!(s.call(&user, Method::GET, &path, None).await.0, 404);
    // Bad roles are refused with the reason.
    for (b, says) in [
        (json!([{"tenantId": t, "role": "owner"}]), "not one of"),
        (
            json!([{"tenantId": t, "role": "viewer"}, {"tenantId": t, "role": "admin"}]),
            "more than one role",
        ),
        (
            json!([{"tenantId": uuid::Uuid::new_v4(), "role": "viewer"}]),
            "does not exist",
        ),
    ] {
        let (st, v) = s
            .call(
                &As::Admin,
                Method::PUT,
                &format!("/api/v1/users/{id}/roles"),
                Some(b),
            )
            .await;
        assert_eq!(st, 400, "{v}");
        assert!(v["error"].as_str().unwrap().contains(says), "{v}");
    }
    // Deleting the user ends their session.
    let (st, _) = s
        .call(
            &As::Admin,
            Method::DELETE,
            &format!("/api/v1/users/{id}"),
            None,
        )
        .await;
    assert_eq!(st, 204);
    assert_eq!(s.call(&user, Method::GET, "/api/v1/me", None).await.0, 401);
    s.stop();
});
