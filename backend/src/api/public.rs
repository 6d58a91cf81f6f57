//! The public side: a recipient checks one payment and can complain about it. No token; every
//! request is rate-limited per client address and logged (reference and outcome, never the ID
//! number).

use super::AppState;
use crate::domain::now_micros;
use crate::error::{AppError, AppResult, ErrorBody, ErrorCode};
use crate::reconcile::complaints::{
    self, ComplaintFiled, ComplaintRequest, PaymentQuery, PaymentStatus,
};
use actix_web::{post, web, HttpRequest, HttpResponse};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Requests one client address may make in a burst.
pub const PUBLIC_BURST_MAX: u32 = 10;
/// One request's worth of allowance comes back this often (10 a minute sustained).
pub const PUBLIC_REFILL: Duration = Duration::from_secs(6);
/// Addresses remembered at once; beyond that the oldest are forgotten.
pub const PUBLIC_CLIENTS_MAX: usize = 100_000;

/// A token bucket per client address.
#[derive(Debug, Default)]
pub struct RateLimiter {
    buckets: Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

impl RateLimiter {
    /// Takes one request's allowance for `client`, or says how long to wait.
    pub fn take(&self, client: IpAddr, now: Instant) -> Result<(), Duration> {
        let mut buckets = self.buckets.lock().expect("rate limiter lock");
        if buckets.len() >= PUBLIC_CLIENTS_MAX && !buckets.contains_key(&client) {
            // Forget clients whose bucket has refilled: they are no different from new ones.
            let full = PUBLIC_REFILL * PUBLIC_BURST_MAX;
            buckets.retain(|_, (_, at)| now.duration_since(*at) < full);
            if buckets.len() >= PUBLIC_CLIENTS_MAX {
                return Err(PUBLIC_REFILL);
            }
        }
        let (tokens, at) = buckets.entry(client).or_insert((PUBLIC_BURST_MAX, now));
        let refilled = (now.duration_since(*at).as_millis() / PUBLIC_REFILL.as_millis()) as u32;
        if refilled > 0 {
            *tokens = (*tokens + refilled).min(PUBLIC_BURST_MAX);
            *at += PUBLIC_REFILL * refilled;
            if *tokens == PUBLIC_BURST_MAX {
                *at = now;
            }
        }
        if *tokens == 0 {
            return Err(PUBLIC_REFILL.saturating_sub(now.duration_since(*at)));
        }
        *tokens -= 1;
        Ok(())
    }
}

fn client(req: &HttpRequest) -> IpAddr {
    req.peer_addr()
        .map(|a| a.ip())
        .unwrap_or(IpAddr::from([0, 0, 0, 0]))
}

fn limit(state: &AppState, req: &HttpRequest) -> AppResult<IpAddr> {
    let ip = client(req);
    state
        .public_limiter
        .take(ip, Instant::now())
        .map_err(|wait| {
            AppError::new(
                ErrorCode::RateLimited,
                format!(
                    "too many requests from this address; try again in {} s",
                    wait.as_secs().max(1)
                ),
            )
        })?;
    Ok(ip)
}

/// A recipient's view of one payment: give the program, the reference on the bank notice and
/// your ID number. A reference that is not yours answers 404 exactly like one that does not
/// exist. No token needed; rate-limited per address.
#[utoipa::path(tag = "public", request_body = PaymentQuery,
    responses((status = 200, body = PaymentStatus), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
#[post("/public/payment-status")]
pub async fn payment_status(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<PaymentQuery>,
) -> AppResult<HttpResponse> {
    let ip = limit(&state, &req)?;
    let q = body.into_inner();
    let reference = q.reference.clone();
    let result = state
        .run(move |c, s| complaints::status(c, &s.personal_data, &q))
        .await;
    tracing::info!(client = %ip, %reference, ok = result.is_ok(), "public payment status");
    Ok(HttpResponse::Ok().json(result?))
}

/// Reports a payment as not received or short; it becomes a `complaint` finding in the next
/// reconciliation. Filing the same complaint again answers the first one (200); a new one 201.
#[utoipa::path(tag = "public", request_body = ComplaintRequest,
    responses((status = 201, body = ComplaintFiled), (status = 200, body = ComplaintFiled), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
#[post("/public/complaints")]
pub async fn file_complaint(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<ComplaintRequest>,
) -> AppResult<HttpResponse> {
    let ip = limit(&state, &req)?;
    let r = body.into_inner();
    let reference = r.reference.clone();
    let result = state
        .run(move |c, s| {
            let tag = s.personal_data.client_tag(&ip.to_string());
            complaints::file(c, &s.personal_data, &r, &tag, now_micros())
        })
        .await;
    tracing::info!(client = %ip, %reference, ok = result.is_ok(), "public complaint");
    let filed = result?;
    Ok(if filed.already_filed {
        HttpResponse::Ok().json(filed)
    } else {
        HttpResponse::Created().json(filed)
    })
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(payment_status).service(file_complaint);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_gets_a_burst_then_waits_for_refills() {
        let limiter = RateLimiter::default();
        let (a, b) = (IpAddr::from([10, 0, 0, 1]), IpAddr::from([10, 0, 0, 2]));
        let t0 = Instant::now();
        for _ in 0..PUBLIC_BURST_MAX {
            assert!(limiter.take(a, t0).is_ok());
        }
        let wait = limiter.take(a, t0).unwrap_err();
        assert!(wait <= PUBLIC_REFILL && wait > Duration::ZERO);
        // Another address is not affected.
        assert!(limiter.take(b, t0).is_ok());
        // One refill period later exactly one more request passes.
        let t1 = t0 + PUBLIC_REFILL;
        assert!(limiter.take(a, t1).is_ok());
        assert!(limiter.take(a, t1).is_err());
        // After a long pause the bucket is full again, not more than full.
        let t2 = t1 + PUBLIC_REFILL * 100;
        for _ in 0..PUBLIC_BURST_MAX {
            assert!(limiter.take(a, t2).is_ok());
        }
        assert!(limiter.take(a, t2).is_err());
    }
}
