//! Opening a store: two processes that open the same new database at once (two
//! instances started together, or `import` beside `serve` on a first run) take turns
//! migrating it; both open it, and the second applies nothing again.

use postdesk_store::{Schema, Store};

use crate::Engine;

engine_tests!(two_stores_opening_a_new_database_at_once_both_open_it);

async fn two_stores_opening_a_new_database_at_once_both_open_it(engine: Engine) {
    // Before migrations had the schema to themselves, about one try in three failed
    // ("table helpdesks already exists"); a few rounds make a miss unlikely.
    let mut engine = engine;
    for round in 0..20 {
        let (first, second) = tokio::join!(
            Store::open_with(&engine.url, engine.data_dir(), Schema::Migrate),
            Store::open_with(&engine.url, engine.data_dir(), Schema::Migrate),
        );
        let (_, first) = first.unwrap_or_else(|e| panic!("round {round}, first: {e}"));
        let (store, second) = second.unwrap_or_else(|e| panic!("round {round}, second: {e}"));
        assert_eq!(first.after, second.after, "round {round}");
        assert!(first.after > 0, "round {round}: no migration applied");
        // The schema the second one found is whole: helpdesks register on it.
        let registered = store
            .register_helpdesks(&[crate::helpdesk(crate::SUPPORT)])
            .await
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        assert_eq!(registered.len(), 1);
        engine = engine.another();
    }
}
