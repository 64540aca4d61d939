//! Host tests of the copy-on-write bookkeeping (`kernel/src/memory/cow.rs`).
//!
//! Expected figures are derived by hand from the rules in the issue: ref_count is the
//! number of live mappings, memory saved is Σ (ref_count − 1) × 4096, refused requests
//! change nothing.

use std::collections::BTreeMap;

use tinyos_hosttest::cow::{
    COW_PAGE_SIZE, COW_RAM_BASE, CowError, CowManager, FaultResolution, MAX_COW_PAGES, RegionType,
    SIMPLE_VEC_CAPACITY, SimpleVec,
};

const PA: u64 = 0x4123_4000;
const PA2: u64 = 0x4200_0000;

/// The manager is megabytes big: build and use it on a thread with a large stack.
fn with_manager(test: impl FnOnce(&mut CowManager) + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(move || {
            let mut manager = Box::new(CowManager::new());
            test(&mut manager);
        })
        .unwrap()
        .join()
        .unwrap();
}

/// Everything a refused request must leave untouched.
fn snapshot(m: &CowManager) -> (usize, String, Vec<String>) {
    let pages = m.pages().map(|p| format!("{p:?}")).collect();
    (m.active_pages, format!("{:?}", m.statistics), pages)
}

#[test]
fn a_new_manager_is_empty_and_costs_its_own_size() {
    with_manager(|m| {
        assert_eq!(m.pages().count(), 0);
        assert_eq!(m.active_pages, 0);
        assert_eq!(m.statistics.memory_saved_bytes, 0);
        assert_eq!(m.statistics.metadata_memory_bytes, std::mem::size_of::<CowManager>() as u64);
        // One slot per 4 KiB frame of 128 MiB.
        assert_eq!(MAX_COW_PAGES, 32768);
        assert_eq!(m.memory_manager, 0);
        assert_eq!(m.allocate_process_id(), 1);
        assert_eq!(m.allocate_process_id(), 2);
        assert_eq!(m.next_process_id, 3);
        m.verify().unwrap();
    });
}

#[test]
fn sharing_a_frame_counts_both_mappings_once() {
    with_manager(|m| {
        let refs = m.share(PA, RegionType::UserData, (0x1000_0000, 1), (0x1000_0000, 2)).unwrap();
        assert_eq!(refs, 2);
        let page = m.find_by_pa(PA).unwrap();
        assert_eq!(page.physical_addr, PA);
        assert_eq!(page.ref_count, 2);
        assert!(page.is_cow);
        assert_eq!(page.original_permissions, RegionType::UserData);
        assert_eq!(page.virtual_addresses.as_slice(), &[0x1000_0000, 0x1000_0000]);
        assert_eq!(page.process_ids.as_slice(), &[1, 2]);
        assert_eq!(m.active_pages, 1);
        assert_eq!(m.statistics.cow_pages_count, 1);
        assert_eq!(m.statistics.peak_cow_pages, 1);
        assert_eq!(m.statistics.memory_saved_bytes, 4096);
        // Two mappings, one of them saved: 50 %.
        assert_eq!(m.memory_efficiency_percent(), 50);
        assert_eq!(m.find_by_mapping(2, 0x1000_0000).unwrap().physical_addr, PA);
        assert!(m.find_by_mapping(3, 0x1000_0000).is_none());
        m.verify().unwrap();
    });
}

#[test]
fn a_third_sharer_adds_one_reference() {
    with_manager(|m| {
        m.share(PA, RegionType::UserData, (0x5000, 1), (0x5000, 2)).unwrap();
        assert_eq!(m.share(PA, RegionType::UserData, (0x5000, 2), (0x5000, 3)).unwrap(), 3);
        assert_eq!(m.active_pages, 1);
        assert_eq!(m.statistics.memory_saved_bytes, 2 * 4096);
        // 3 mappings, 2 saved: 66 %.
        assert_eq!(m.memory_efficiency_percent(), 66);
        m.verify().unwrap();
    });
}

#[test]
fn sharing_from_a_mapping_the_frame_does_not_have_is_refused() {
    with_manager(|m| {
        m.share(PA, RegionType::UserData, (0x5000, 1), (0x5000, 2)).unwrap();
        let before = snapshot(m);
        let err = m.share(PA, RegionType::UserData, (0x6000, 1), (0x5000, 3)).unwrap_err();
        assert_eq!(err, CowError::MappingNotFound { pa: PA, va: 0x6000, pid: 1 });
        assert_eq!(snapshot(m), before);
        let err = m.share(PA2, RegionType::UserData, (0x5000, 1), (0x5000, 1)).unwrap_err();
        assert!(matches!(err, CowError::MappingExists { .. }));
        assert_eq!(snapshot(m), before);
    });
}

#[test]
fn removing_mappings_down_to_zero_forgets_the_frame_but_keeps_the_peak() {
    with_manager(|m| {
        m.share(PA, RegionType::UserData, (0x5000, 1), (0x5000, 2)).unwrap();
        m.share(PA2, RegionType::UserData, (0x6000, 1), (0x6000, 2)).unwrap();
        assert_eq!(m.statistics.peak_cow_pages, 2);
        assert_eq!(m.statistics.memory_saved_bytes, 2 * 4096);
        assert_eq!(m.remove_mapping(PA, 0x5000, 1).unwrap(), 1);
        // Still tracked with one mapping: nothing saved on it any more.
        assert_eq!(m.statistics.memory_saved_bytes, 4096);
        assert_eq!(m.find_by_pa(PA).unwrap().process_ids.as_slice(), &[2]);
        m.verify().unwrap();
        assert_eq!(m.remove_mapping(PA, 0x5000, 2).unwrap(), 0);
        assert!(m.find_by_pa(PA).is_none());
        assert_eq!(m.active_pages, 1);
        assert_eq!(m.statistics.cow_pages_count, 1);
        assert_eq!(m.statistics.peak_cow_pages, 2);
        m.verify().unwrap();
    });
}

#[test]
fn removing_an_unknown_mapping_changes_nothing() {
    with_manager(|m| {
        m.share(PA, RegionType::UserData, (0x5000, 1), (0x5000, 2)).unwrap();
        let before = snapshot(m);
        // Upstream decremented the count even when the VA was not found.
        assert_eq!(
            m.remove_mapping(PA, 0x7000, 1).unwrap_err(),
            CowError::MappingNotFound { pa: PA, va: 0x7000, pid: 1 }
        );
        assert_eq!(m.remove_mapping(PA, 0x5000, 9).unwrap_err(), CowError::MappingNotFound { pa: PA, va: 0x5000, pid: 9 });
        assert_eq!(m.remove_mapping(PA2, 0x5000, 1).unwrap_err(), CowError::NotTracked(PA2));
        assert_eq!(snapshot(m), before);
    });
}

#[test]
fn addresses_outside_ram_or_unaligned_are_refused() {
    with_manager(|m| {
        let end = COW_RAM_BASE + MAX_COW_PAGES as u64 * COW_PAGE_SIZE;
        for pa in [0, COW_RAM_BASE - COW_PAGE_SIZE, PA + 8, end, u64::MAX & !0xFFF] {
            assert_eq!(
                m.share(pa, RegionType::UserData, (0x5000, 1), (0x5000, 2)).unwrap_err(),
                CowError::NotRamFrame(pa)
            );
            assert!(m.find_by_pa(pa).is_none());
        }
        // The first and last frames of RAM are fine.
        m.share(COW_RAM_BASE, RegionType::UserData, (0x5000, 1), (0x5000, 2)).unwrap();
        m.share(end - COW_PAGE_SIZE, RegionType::UserData, (0x6000, 1), (0x6000, 2)).unwrap();
        m.verify().unwrap();
    });
}

#[test]
fn a_frame_takes_at_most_simple_vec_capacity_mappings() {
    with_manager(|m| {
        m.share(PA, RegionType::UserData, (0x5000, 1), (0x5000, 2)).unwrap();
        for pid in 3..=SIMPLE_VEC_CAPACITY {
            assert_eq!(m.add_mapping(PA, 0x5000, pid).unwrap(), pid);
        }
        let before = snapshot(m);
        assert_eq!(m.add_mapping(PA, 0x5000, 99).unwrap_err(), CowError::TooManyMappings(PA));
        assert_eq!(
            m.share(PA, RegionType::UserData, (0x5000, 1), (0x5000, 99)).unwrap_err(),
            CowError::TooManyMappings(PA)
        );
        assert_eq!(snapshot(m), before);
        assert_eq!(m.statistics.memory_saved_bytes, (SIMPLE_VEC_CAPACITY as u64 - 1) * 4096);
        assert_eq!(m.add_mapping(PA2, 0x5000, 1).unwrap_err(), CowError::NotTracked(PA2));
        assert!(matches!(m.add_mapping(PA, 0x5000, 1).unwrap_err(), CowError::MappingExists { .. }));
        m.verify().unwrap();
    });
}

#[test]
fn removal_keeps_the_parallel_arrays_aligned() {
    with_manager(|m| {
        m.share(PA, RegionType::UserData, (0x1000, 1), (0x2000, 2)).unwrap();
        m.add_mapping(PA, 0x3000, 3).unwrap();
        m.remove_mapping(PA, 0x2000, 2).unwrap();
        let page = m.find_by_pa(PA).unwrap();
        assert_eq!(page.mappings().collect::<Vec<_>>(), vec![(0x1000, 1), (0x3000, 3)]);
        // Freed slots are blanked, not stale.
        assert_eq!(page.virtual_addresses.data[2], 0);
        assert_eq!(page.process_ids.data[2], 0);
        m.verify().unwrap();
    });
}

#[test]
fn a_hand_protected_page_has_one_reference_and_saves_nothing() {
    with_manager(|m| {
        assert_eq!(m.protect_single(PA, RegionType::UserData, 0x5000, 1).unwrap(), 1);
        assert_eq!(m.statistics.memory_saved_bytes, 0);
        assert_eq!(m.active_pages, 1);
        let before = snapshot(m);
        assert!(matches!(m.protect_single(PA, RegionType::UserData, 0x5000, 1), Err(CowError::MappingExists { .. })));
        // The same mapping cannot be recorded for a second frame.
        assert_eq!(
            m.protect_single(PA2, RegionType::UserData, 0x5000, 1).unwrap_err(),
            CowError::MappedElsewhere { va: 0x5000, pid: 1, pa: PA }
        );
        assert_eq!(snapshot(m), before);
        assert_eq!(m.untrack_sole(PA).unwrap(), (0x5000, 1));
        assert_eq!(m.active_pages, 0);
        m.verify().unwrap();
    });
}

#[test]
fn a_shared_page_cannot_be_untracked_by_hand() {
    with_manager(|m| {
        m.share(PA, RegionType::UserData, (0x5000, 1), (0x5000, 2)).unwrap();
        let before = snapshot(m);
        assert_eq!(m.untrack_sole(PA).unwrap_err(), CowError::TooManyMappings(PA));
        assert_eq!(m.untrack_sole(PA2).unwrap_err(), CowError::NotTracked(PA2));
        assert_eq!(snapshot(m), before);
    });
}

#[test]
fn faults_are_counted_by_resolution() {
    with_manager(|m| {
        m.record_fault(FaultResolution::Duplicated);
        m.record_fault(FaultResolution::Reused);
        m.record_fault(FaultResolution::Duplicated);
        assert_eq!(m.statistics.cow_faults_handled, 3);
        assert_eq!(m.statistics.pages_duplicated, 2);
        m.verify().unwrap();
    });
}

#[test]
fn verify_notices_a_corrupted_count() {
    with_manager(|m| {
        m.share(PA, RegionType::UserData, (0x5000, 1), (0x5000, 2)).unwrap();
        let slot = CowManager::slot_of(PA).unwrap();
        m.cow_pages[slot].as_mut().unwrap().ref_count = 3;
        assert!(m.verify().is_err());
        m.cow_pages[slot].as_mut().unwrap().ref_count = 2;
        m.verify().unwrap();
        m.statistics.memory_saved_bytes = 0;
        assert!(m.verify().is_err());
    });
}

/// A tiny deterministic generator: no crates on this offline machine.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// Random operations against a model (frame -> list of mappings): after each one the
/// manager agrees with the model and every statistic is what the model implies.
#[test]
fn random_operations_agree_with_a_model() {
    with_manager(|m| {
        let mut rng = Lcg(0x5eed);
        let mut model: BTreeMap<u64, Vec<(u64, usize)>> = BTreeMap::new();
        let mut peak = 0usize;
        for _ in 0..4_000 {
            let pa = COW_RAM_BASE + rng.below(16) * COW_PAGE_SIZE;
            let va = 0x1000_0000 + rng.below(4) * COW_PAGE_SIZE;
            let pid = 1 + rng.below(5) as usize;
            let mappings = model.entry(pa).or_default();
            match rng.below(3) {
                0 => {
                    let owner = if mappings.is_empty() {
                        (va ^ 0x10_0000, pid)
                    } else {
                        mappings[rng.below(mappings.len() as u64) as usize]
                    };
                    let result = m.share(pa, RegionType::UserData, owner, (va, pid));
                    let fits = mappings.len() < SIMPLE_VEC_CAPACITY;
                    if !mappings.contains(&(va, pid)) && owner != (va, pid) && fits {
                        if mappings.is_empty() {
                            mappings.push(owner);
                        }
                        mappings.push((va, pid));
                        assert_eq!(result, Ok(mappings.len()));
                    } else {
                        assert!(result.is_err());
                    }
                }
                1 => {
                    let result = m.remove_mapping(pa, va, pid);
                    match mappings.iter().position(|&x| x == (va, pid)) {
                        Some(i) => {
                            mappings.remove(i);
                            assert_eq!(result, Ok(mappings.len()));
                        }
                        None => assert!(result.is_err()),
                    }
                }
                _ => {
                    let result = m.add_mapping(pa, va, pid);
                    let ok = !mappings.is_empty()
                        && !mappings.contains(&(va, pid))
                        && mappings.len() < SIMPLE_VEC_CAPACITY;
                    if ok {
                        mappings.push((va, pid));
                        assert_eq!(result, Ok(mappings.len()));
                    } else {
                        assert!(result.is_err());
                    }
                }
            }
            model.retain(|_, v| !v.is_empty());
            peak = peak.max(model.len());
            m.verify().unwrap();
            assert_eq!(m.active_pages, model.len());
            assert_eq!(m.statistics.peak_cow_pages, peak);
            let saved: u64 = model.values().map(|v| (v.len() as u64 - 1) * 4096).sum();
            assert_eq!(m.statistics.memory_saved_bytes, saved);
            for (pa, mappings) in &model {
                let page = m.find_by_pa(*pa).unwrap();
                assert_eq!(page.ref_count, mappings.len());
                assert_eq!(&page.mappings().collect::<Vec<_>>(), mappings);
            }
        }
    });
}

#[test]
fn simple_vec_push_and_remove() {
    let mut v: SimpleVec<u64> = SimpleVec::new(0);
    for i in 0..SIMPLE_VEC_CAPACITY as u64 {
        v.push(i + 10).unwrap();
    }
    assert!(v.is_full());
    assert_eq!(v.push(99), Err(99));
    assert_eq!(v.remove(0, 0), Some(10));
    assert_eq!(v.as_slice(), &[11, 12, 13, 14, 15, 16, 17]);
    assert_eq!(v.remove(7, 0), None);
    assert_eq!(v.data[7], 0);
}
