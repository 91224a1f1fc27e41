//! Pushed authorization requests (RFC 9126): the authorization request's
//! parameters go to the provider over the back channel, authenticated, and
//! the browser carries only `client_id` and the `request_uri` it answered.

use super::client_auth::Credentials;
use super::error::ProtocolError;
use super::error::clean_error_code;
use super::http::HttpClient;
use serde_json::Value;
use url::Url;

/// Pushes the parameters of `url` (an authorization URL) to `endpoint`;
/// returns the URL to send the browser to.
pub(crate) async fn push(
    http: &HttpClient,
    credentials: &Credentials,
    endpoint: &str,
    authorization_endpoint: &Url,
    url: &Url,
) -> Result<Url, ProtocolError> {
    let params: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    let request = credentials
        .post_form(http.reqwest(), endpoint, params)
        .map_err(ProtocolError::Provider)?;
    let (status, body) = http.send(request).await.map_err(|e| e.during("PAR"))?;
    let json: Value = serde_json::from_slice(&body)
        .map_err(|_| ProtocolError::Provider("PAR answer is not JSON".into()))?;
    if !status.is_success() {
        let code = json
            .get("error")
            .and_then(Value::as_str)
            .map(clean_error_code)
            .unwrap_or_default();
        return Err(ProtocolError::Provider(format!(
            "PAR refused: HTTP {status} {code}"
        )));
    }
    let request_uri = json
        .get("request_uri")
        .and_then(Value::as_str)
        .ok_or_else(|| ProtocolError::Provider("PAR answer has no request_uri".into()))?;
    let mut pushed = authorization_endpoint.clone();
    pushed
        .query_pairs_mut()
        .append_pair("client_id", &credentials.client_id)
        .append_pair("request_uri", request_uri);
    Ok(pushed)
}
