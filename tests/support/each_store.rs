//! `on_each_store!`: one test body, run once on each store backend, as two tests.

/// Makes `<name>::local` and `<name>::s3`, two tests that run `async fn <name>(backend: Backend)` on the local
/// store and on an S3 server of their own. The function and the module share the test's sentence name (they live in
/// different namespaces), so a failure names the behaviour and the store.
macro_rules! on_each_store {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn local() {
                super::$name($crate::support::Backend::Local).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn s3() {
                super::$name($crate::support::Backend::S3).await;
            }
        }
    };
}

pub(crate) use on_each_store;
