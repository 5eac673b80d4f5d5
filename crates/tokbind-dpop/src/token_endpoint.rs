//! The authorization server's side (RFC 9449 §5): check the proof on a token request and
//! bind what is issued to its key.

use std::time::SystemTime;

use http::request::Parts;

use crate::error::DpopError;
use crate::layer::single_proof;
use crate::proof::{DpopProof, DpopVerifier, RequestFacts};

impl DpopVerifier {
    /// Check the `DPoP` header of a token request addressed to `token_endpoint` (its URL as
    /// clients see it). `Ok(None)`: no proof, issue Bearer tokens (or refuse, for clients
    /// registered with `dpop_bound_access_tokens`). `Ok(Some(proof))`: bind the access token
    /// to `proof.jkt` (`cnf.jkt`, `token_type: "DPoP"`), and the refresh token of a public
    /// client too. An error answers with
    /// [`token_endpoint_response`](DpopError::token_endpoint_response).
    pub async fn check_token_request(
        &self,
        request: &Parts,
        token_endpoint: &str,
    ) -> Result<Option<DpopProof>, DpopError> {
        let Some(proof) = single_proof(&request.headers)? else {
            return Ok(None);
        };
        let facts = RequestFacts {
            method: request.method.as_str(),
            // Normalised by the check.
            htu: token_endpoint,
            access_token: None,
        };
        self.verify(proof, &facts, SystemTime::now())
            .await
            .map(Some)
    }

    /// RFC 9449 §10: the authorization code was bound with `dpop_jkt`; the token request's
    /// proof must be made with that key.
    pub fn check_dpop_jkt(expected: &str, proof: Option<&DpopProof>) -> Result<(), DpopError> {
        match proof {
            Some(p)
                if aws_lc_rs::constant_time::verify_slices_are_equal(
                    p.jkt.as_bytes(),
                    expected.as_bytes(),
                )
                .is_ok() =>
            {
                Ok(())
            }
            Some(_) => Err(DpopError::KeyNotBound),
            None => Err(DpopError::MissingProof),
        }
    }
}
