//! [`ResponseFuture`]: the application's response, unboxed unless it asks for store work.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::Response;
use http_body_util::{Either, Full};
use pin_project_lite::pin_project;

use crate::Config;
use crate::app_response::finish;
use crate::cookies::CookieValues;
use crate::markers::{EndDeviceBoundSession, RequireFreshProof, StartDeviceBoundSession};

/// Work that needs the store (and so may wait on a shared one), boxed.
pub(crate) type Boxed<B, E> =
    Pin<Box<dyn Future<Output = Result<Response<Either<B, Full<Bytes>>>, E>> + Send>>;

pin_project! {
    /// The response future of [`Dbsc`](crate::Dbsc). A request that needs nothing from the store — no
    /// DBSC endpoint, no short-lived cookie, no unbound login cookie that may be retired:
    /// most requests — goes to the inner service without boxing; only a response carrying
    /// one of the markers then needs the store, and is boxed.
    pub struct ResponseFuture<F, B, E> {
        #[pin]
        pub(crate) kind: Kind<F, B, E>,
    }
}

pin_project! {
    #[project = KindProj]
    pub(crate) enum Kind<F, B, E> {
        Direct {
            #[pin]
            future: F,
            config: Arc<Config>,
            login: CookieValues,
        },
        Boxed { future: Boxed<B, E> },
    }
}

impl<F, B, E> Future for ResponseFuture<F, B, E>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Send + 'static,
    E: 'static,
{
    type Output = Result<Response<Either<B, Full<Bytes>>>, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let next = match self.as_mut().project().kind.project() {
            KindProj::Boxed { future } => return future.as_mut().poll(cx),
            KindProj::Direct {
                future,
                config,
                login,
            } => {
                let res = ready!(future.poll(cx))?;
                let marked = {
                    let e = res.extensions();
                    e.get::<StartDeviceBoundSession>().is_some()
                        || e.get::<EndDeviceBoundSession>().is_some()
                        || e.get::<RequireFreshProof>().is_some()
                };
                if !marked {
                    return Poll::Ready(Ok(res.map(Either::Left)));
                }
                let (config, login) = (Arc::clone(config), std::mem::take(login));
                Kind::Boxed {
                    future: Box::pin(async move { Ok(finish(&config, res, None, &login).await) }),
                }
            }
        };
        self.as_mut().project().kind.set(next);
        self.poll(cx)
    }
}
