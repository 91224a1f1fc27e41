//! The store suite (`keyway_tests::store_suite`) against the highly
//! available stores on real servers — PostgreSQL, Redis behind Sentinel,
//! Redis Cluster — then what is particular to each: the PostgreSQL schema
//! and expiry, the cluster's key layout and change tracking.

use keyway_tests::store_targets::{Cluster, Postgres, Sentinel};

async fn postgres() -> Postgres {
    Postgres::start().await
}

async fn sentinel() -> Sentinel {
    Sentinel::start().await
}

async fn cluster() -> Cluster {
    Cluster::start().await
}

keyway_tests::store_suite!(postgres_store, super::postgres);
keyway_tests::store_suite!(sentinel_store, super::sentinel);
keyway_tests::store_suite!(cluster_store, super::cluster);
