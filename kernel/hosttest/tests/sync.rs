//! Host tests of the kernel spin lock (`kernel/src/sync.rs`).

use std::sync::Arc;

use tinyos_hosttest::sync::SpinLock;

#[test]
fn try_lock_refuses_while_a_guard_exists_and_drop_releases() {
    let lock = SpinLock::new(5u32);
    assert!(!lock.is_locked());
    {
        let mut guard = lock.lock();
        *guard += 1;
        assert!(lock.is_locked());
        assert!(lock.try_lock().is_none());
    }
    assert!(!lock.is_locked());
    assert_eq!(*lock.try_lock().unwrap(), 6);
}

#[test]
fn taking_a_held_lock_again_panics_instead_of_hanging() {
    let lock = SpinLock::new(());
    let _held = lock.lock();
    let second = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _again = lock.lock();
    }));
    assert!(second.is_err());
    // The failed attempt did not release the first holder's lock.
    assert!(lock.is_locked());
}

#[test]
fn threads_serialise_through_the_lock() {
    let lock = Arc::new(SpinLock::new(0u64));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let lock = Arc::clone(&lock);
            std::thread::spawn(move || {
                for _ in 0..10_000 {
                    *lock.lock() += 1;
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    assert_eq!(*lock.lock(), 40_000);
}
