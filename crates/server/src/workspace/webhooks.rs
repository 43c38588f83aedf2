//! Settings > Webhooks (admins only): the endpoints that receive events, adding one (its secret
//! is shown once, on the page that answers the form), disabling or deleting one, its delivery
//! log, and a test event.

use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Serialize;
use viva_store::{Delivery, Endpoint, NewEndpoint, Role, Timestamp};

use crate::state::AppState;
use crate::webhooks::{EVENT_TYPES, check_events, check_url, new_secret};

use super::session::SignedIn;
use super::{message, minute, render};

/// Deliveries shown in an endpoint's log: the newest.
const LOG_ROWS: u32 = 100;

/// An endpoint as the pages show it (never its secret).
#[derive(Serialize)]
struct EndpointView {
    id: String,
    url: String,
    events: Vec<String>,
    enabled: bool,
    from_config: bool,
    created: String,
}

impl From<&Endpoint> for EndpointView {
    fn from(endpoint: &Endpoint) -> Self {
        EndpointView {
            id: endpoint.id.clone(),
            url: endpoint.url.clone(),
            events: endpoint.events.clone(),
            enabled: endpoint.enabled,
            from_config: endpoint.from_config,
            created: minute(endpoint.created_at),
        }
    }
}

/// One line of the delivery log.
#[derive(Serialize)]
struct DeliveryView {
    message_id: String,
    event_type: String,
    status: &'static str,
    attempts: u32,
    last_status: Option<u16>,
    last_error: Option<String>,
    next_attempt: Option<String>,
    created: String,
    updated: String,
}

impl From<&Delivery> for DeliveryView {
    fn from(delivery: &Delivery) -> Self {
        DeliveryView {
            message_id: delivery.message_id.clone(),
            event_type: delivery.event_type.clone(),
            status: delivery.status.as_str(),
            attempts: delivery.attempts,
            last_status: delivery.last_status,
            last_error: delivery.last_error.clone(),
            next_attempt: delivery.next_attempt_at.map(second),
            created: second(delivery.created_at),
            updated: second(delivery.updated_at),
        }
    }
}

/// A moment to the second: retries in a test run come seconds apart.
fn second(at: Timestamp) -> String {
    format!("{} UTC", at.to_string()[..19].replace('T', " "))
}

/// What the add form was sent with, to show it again beside its error.
#[derive(Serialize, Default)]
struct AddForm {
    url: String,
    events: Vec<String>,
}

/// The endpoints, the add form, and (just after adding one) its secret.
async fn list_page(
    state: &AppState,
    signed_in: &SignedIn,
    status: StatusCode,
    form: AddForm,
    error: Option<String>,
    created: Option<(Endpoint, String)>,
) -> Response {
    let endpoints = match state.store.endpoints().await {
        Ok(endpoints) => endpoints,
        Err(err) => {
            tracing::error!(error = %err, "cannot list webhook endpoints");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };
    let endpoints: Vec<EndpointView> = endpoints.iter().map(EndpointView::from).collect();
    let created = created.map(|(endpoint, secret)| {
        minijinja::context! { endpoint => minijinja::value::Serde(EndpointView::from(&endpoint)), secret }
    });
    let mut page = render(
        "webhooks.html",
        Some(signed_in),
        "settings",
        minijinja::context! {
            endpoints => minijinja::value::Serde(endpoints),
            event_types => EVENT_TYPES.to_vec(),
            form => minijinja::value::Serde(form),
            error,
            created,
        },
    );
    *page.status_mut() = status;
    page
}

pub async fn page(State(state): State<AppState>, signed_in: SignedIn) -> Response {
    if let Some(refused) = signed_in.denied(Role::Admin) {
        return refused;
    }
    list_page(
        &state,
        &signed_in,
        StatusCode::OK,
        AddForm::default(),
        None,
        None,
    )
    .await
}

/// The value of `name` in a posted form, or "".
fn field<'a>(fields: &'a [(String, String)], name: &str) -> &'a str {
    fields
        .iter()
        .find(|(n, _)| n == name)
        .map_or("", |(_, v)| v.as_str())
}

/// Adds an endpoint; the answer shows its secret, this once.
pub async fn add(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    if let Some(refused) = signed_in
        .denied(Role::Admin)
        .or_else(|| signed_in.forged(field(&fields, "csrf")))
    {
        return refused;
    }
    let form = AddForm {
        url: field(&fields, "url").trim().to_owned(),
        // The checkboxes: each ticked one is an `events` field.
        events: fields
            .iter()
            .filter(|(n, _)| n == "events")
            .map(|(_, v)| v.clone())
            .collect(),
    };
    let checked = check_url(&form.url)
        .map(|_| ())
        .and_then(|()| check_events(&form.events));
    if let Err(reason) = checked {
        return list_page(
            &state,
            &signed_in,
            StatusCode::BAD_REQUEST,
            form,
            Some(reason),
            None,
        )
        .await;
    }
    let secret = new_secret();
    let new = NewEndpoint {
        url: form.url.clone(),
        secret: secret.clone(),
        events: form.events.clone(),
    };
    let endpoint = match state.store.create_endpoint(new, Timestamp::now()).await {
        Ok(endpoint) => endpoint,
        Err(err) => {
            tracing::error!(error = %err, "cannot add a webhook endpoint");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };
    tracing::info!(endpoint = %endpoint.id, url = %endpoint.url, user = %signed_in.user.email, "webhook endpoint added");
    list_page(
        &state,
        &signed_in,
        StatusCode::CREATED,
        AddForm::default(),
        None,
        Some((endpoint, secret)),
    )
    .await
}

/// The endpoint `id`, or the page that says there is none.
async fn find(state: &AppState, signed_in: &SignedIn, id: &str) -> Result<Endpoint, Response> {
    match state.store.endpoint(id).await {
        Ok(Some(endpoint)) => Ok(endpoint),
        Ok(None) => Err(message(
            StatusCode::NOT_FOUND,
            Some(signed_in),
            "No such webhook endpoint",
            "This endpoint does not exist (it may have been deleted).",
        )),
        Err(err) => {
            tracing::error!(error = %err, "cannot read a webhook endpoint");
            Err(StatusCode::SERVICE_UNAVAILABLE.into_response())
        }
    }
}

/// One endpoint and its delivery log.
pub async fn endpoint(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(id): Path<String>,
) -> Response {
    if let Some(refused) = signed_in.denied(Role::Admin) {
        return refused;
    }
    let endpoint = match find(&state, &signed_in, &id).await {
        Ok(endpoint) => endpoint,
        Err(refused) => return refused,
    };
    let deliveries = match state.store.deliveries(&endpoint.id, LOG_ROWS).await {
        Ok(deliveries) => deliveries,
        Err(err) => {
            tracing::error!(error = %err, "cannot read webhook deliveries");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };
    let deliveries: Vec<DeliveryView> = deliveries.iter().map(DeliveryView::from).collect();
    render(
        "webhooks.html",
        Some(&signed_in),
        "settings",
        minijinja::context! {
            endpoint => minijinja::value::Serde(EndpointView::from(&endpoint)),
            deliveries => minijinja::value::Serde(deliveries),
        },
    )
}

/// The checks every change to one endpoint makes: admin, this session's form, an endpoint
/// that exists and (for `changes_config`) is not one the config file defines.
async fn changeable(
    state: &AppState,
    signed_in: &SignedIn,
    id: &str,
    fields: &[(String, String)],
    changes_config: bool,
) -> Result<Endpoint, Response> {
    if let Some(refused) = signed_in
        .denied(Role::Admin)
        .or_else(|| signed_in.forged(field(fields, "csrf")))
    {
        return Err(refused);
    }
    let endpoint = find(state, signed_in, id).await?;
    if changes_config && endpoint.from_config {
        return Err(message(
            StatusCode::CONFLICT,
            Some(signed_in),
            "Set in the config file",
            "This endpoint comes from the [[webhooks]] entries of the config file: change or \
             remove it there and restart Viva.",
        ));
    }
    Ok(endpoint)
}

/// Queues the test event for the endpoint.
pub async fn send_test(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(id): Path<String>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let endpoint = match changeable(&state, &signed_in, &id, &fields, false).await {
        Ok(endpoint) => endpoint,
        Err(refused) => return refused,
    };
    if let Err(err) = state.webhooks.send_test(&endpoint.id).await {
        tracing::error!(error = %err, "cannot queue a test webhook");
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    Redirect::to(&format!("/settings/webhooks/{}", endpoint.id)).into_response()
}

/// Enables (`enabled=true`) or disables the endpoint.
pub async fn set_enabled(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(id): Path<String>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let endpoint = match changeable(&state, &signed_in, &id, &fields, true).await {
        Ok(endpoint) => endpoint,
        Err(refused) => return refused,
    };
    let enabled = match field(&fields, "enabled") {
        "true" => true,
        "false" => false,
        _ => {
            return message(
                StatusCode::BAD_REQUEST,
                Some(&signed_in),
                "Not changed",
                "Say enabled=true or enabled=false.",
            );
        }
    };
    if let Err(err) = state
        .store
        .set_endpoint_enabled(&endpoint.id, enabled)
        .await
    {
        tracing::error!(error = %err, "cannot enable or disable a webhook endpoint");
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    tracing::info!(endpoint = %endpoint.id, enabled, user = %signed_in.user.email, "webhook endpoint changed");
    Redirect::to(&format!("/settings/webhooks/{}", endpoint.id)).into_response()
}

/// Deletes the endpoint and its log.
pub async fn delete(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(id): Path<String>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let endpoint = match changeable(&state, &signed_in, &id, &fields, true).await {
        Ok(endpoint) => endpoint,
        Err(refused) => return refused,
    };
    if let Err(err) = state.store.delete_endpoint(&endpoint.id).await {
        tracing::error!(error = %err, "cannot delete a webhook endpoint");
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    tracing::info!(endpoint = %endpoint.id, user = %signed_in.user.email, "webhook endpoint deleted");
    Redirect::to("/settings/webhooks").into_response()
}
