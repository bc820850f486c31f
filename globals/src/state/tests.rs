//! The managers' rules on made-up clocks: ids, liveness, placement.

use super::*;

const GIB: u64 = 1 << 30;

fn register(
    s: &mut State,
    id: u32,
    role: Role,
    fabric: &str,
    r: Resources,
    now: Instant,
) -> Outcome {
    let control = (role == Role::Processor).then(|| format!("{fabric}-control"));
    s.handle(
        GlobalsRequest::Register {
            id,
            role,
            fabric: fabric.into(),
            control,
            resources: r,
            host_pid: 42,
        },
        now,
    )
}

fn registered_id(o: &Outcome) -> u32 {
    match &o.reply {
        GlobalsReply::Registered { id, .. } => *id,
        other => panic!("not registered: {other:?}"),
    }
}

fn mem(bytes: u64) -> Resources {
    Resources {
        mem_bytes: bytes,
        ..Resources::default()
    }
}

fn disk(bytes: u64) -> Resources {
    Resources {
        disk_bytes: bytes,
        ..Resources::default()
    }
}

fn heartbeat(s: &mut State, id: u32, processes: u32, used: u64, now: Instant) -> GlobalsReply {
    let load = Load {
        processes,
        used_bytes: used,
        ..Load::default()
    };
    s.handle(GlobalsRequest::Heartbeat { id, load }, now).reply
}

fn place(s: &mut State, vnode: &str, now: Instant) -> Result<(u32, u32, VNode), String> {
    match s
        .handle(
            GlobalsRequest::PlaceRun {
                vnode: vnode.into(),
            },
            now,
        )
        .reply
    {
        GlobalsReply::Placed {
            processor,
            home,
            vnode,
        } => Ok((processor.id, home, vnode)),
        GlobalsReply::Error(e) => Err(e),
        other => panic!("unexpected {other:?}"),
    }
}

fn ms(t: Instant, ms: u64) -> Instant {
    t + Duration::from_millis(ms)
}

/// A small rack: memory 1 and 2, storage 3, processors 4 and 5.
fn rack(t: Instant) -> State {
    let mut s = State::restore(Vec::new(), Vec::new(), Vec::new(), t);
    assert_eq!(
        registered_id(&register(&mut s, 0, Role::Memory, "m1:1", mem(GIB), t)),
        1
    );
    assert_eq!(
        registered_id(&register(&mut s, 0, Role::Memory, "m2:1", mem(2 * GIB), t)),
        2
    );
    assert_eq!(
        registered_id(&register(&mut s, 0, Role::Storage, "s:1", disk(GIB), t)),
        3
    );
    assert_eq!(
        registered_id(&register(
            &mut s,
            0,
            Role::Processor,
            "p1:1",
            Resources::default(),
            t
        )),
        4
    );
    assert_eq!(
        registered_id(&register(
            &mut s,
            0,
            Role::Processor,
            "p2:1",
            Resources::default(),
            t
        )),
        5
    );
    s
}

#[test]
fn ids_are_assigned_in_order_and_kept_per_address() {
    let t = Instant::now();
    let mut s = rack(t);
    // The same address registering again gets its id back, without a new
    // record (nothing changed).
    let again = register(&mut s, 0, Role::Memory, "m2:1", mem(GIB), t);
    assert_eq!(registered_id(&again), 2);
    assert!(again.records.is_empty());
    // A new address gets the next free id, recorded.
    let new = register(&mut s, 0, Role::Memory, "m3:1", mem(GIB), t);
    assert_eq!(registered_id(&new), 6);
    assert_eq!(
        new.records,
        vec![Record::Assign {
            id: 6,
            fabric: "m3:1".into(),
            role: Role::Memory
        }]
    );
    match &new.reply {
        GlobalsReply::Registered { peers, .. } => assert_eq!(peers.len(), 6),
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_asked_for_id_is_taken_unless_a_live_component_holds_it() {
    let t = Instant::now();
    let mut s = rack(t);
    // Held by a live component at another address: refused, with a sentence.
    match register(&mut s, 1, Role::Memory, "elsewhere:1", mem(GIB), t).reply {
        GlobalsReply::Error(e) => assert!(
            e.contains("id 1 belongs to the memory component at m1:1"),
            "{e}"
        ),
        other => panic!("{other:?}"),
    }
    // A free id is taken, and ids handed out later skip it.
    assert_eq!(
        registered_id(&register(&mut s, 9, Role::Memory, "m9:1", mem(GIB), t)),
        9
    );
    assert_eq!(
        registered_id(&register(&mut s, 0, Role::Memory, "m6:1", mem(GIB), t)),
        6
    );
    // Once its holder is down, another address may take the id; the
    // address's old id is forgotten.
    let later = ms(t, DOWN_AFTER_MS + 1);
    let o = register(&mut s, 1, Role::Memory, "m6:1", mem(GIB), later);
    assert_eq!(registered_id(&o), 1);
    assert!(o.records.contains(&Record::Forget { id: 6 }));
    assert!(o.records.contains(&Record::Assign {
        id: 1,
        fabric: "m6:1".into(),
        role: Role::Memory
    }));
}

#[test]
fn silence_is_down_and_a_heartbeat_is_up_again() {
    let t = Instant::now();
    let mut s = rack(t);
    let just_before = ms(t, DOWN_AFTER_MS - 1);
    assert!(s.components(just_before).iter().all(|c| c.up));
    // A memory component's heartbeat is answered with the others up and
    // the memory components' free memory.
    match heartbeat(&mut s, 1, 0, 0, just_before) {
        GlobalsReply::Peers { peers, backup } => {
            assert_eq!(backup, 0, "one copy kept");
            assert_eq!(peers.iter().map(|p| p.id).collect::<Vec<_>>(), [2, 3, 4, 5]);
            assert_eq!(peers[0].free_bytes, 2 * GIB);
            assert_eq!(peers[0].fabric, "m2:1");
            assert_eq!(peers[1].free_bytes, 0, "storage");
        }
        other => panic!("{other:?}"),
    }
    let after = ms(t, DOWN_AFTER_MS + 100);
    let comps = s.components(after);
    assert!(comps[0].up, "memory 1 heartbeated");
    assert!(!comps[1].up);
    assert_eq!(comps[1].silent_ms, DOWN_AFTER_MS + 100);
    // Each fall is reported once.
    assert_eq!(s.sweep(after), vec![2, 3, 4, 5]);
    assert!(s.sweep(ms(after, 10)).is_empty());
    // Only those up are told: memory 1 is, the rest are not.
    assert_eq!(
        heartbeat(&mut s, 2, 0, 0, after),
        GlobalsReply::Peers {
            peers: vec![Peer {
                id: 1,
                role: Role::Memory,
                fabric: "m1:1".into(),
                free_bytes: GIB
            }],
            backup: 0
        }
    );
    assert!(s.components(after)[1].up);
}

#[test]
fn a_heartbeat_from_an_unknown_id_asks_to_register() {
    let t = Instant::now();
    let mut s = rack(t);
    match heartbeat(&mut s, 77, 0, 0, t) {
        GlobalsReply::Error(e) => assert!(e.contains("register first"), "{e}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn placement_takes_the_least_loaded_processor_and_most_free_memory() {
    let t = Instant::now();
    let mut s = rack(t);
    heartbeat(&mut s, 4, 3, 0, t);
    heartbeat(&mut s, 5, 1, 0, t);
    // Memory 2 has more RAM, but most of it is used.
    heartbeat(&mut s, 2, 0, 2 * GIB - (1 << 20), t);
    let (p, home, v) = place(&mut s, "web", t).unwrap();
    assert_eq!((p, home), (5, 1));
    assert_eq!(
        v,
        VNode {
            name: "web".into(),
            id: 1,
            storage: 3
        }
    );
    // A placed run counts until the next heartbeat: 5 now has 1 + 1, then
    // 1 + 2 ties with 4's 3 and the lower id wins.
    assert_eq!(place(&mut s, "web", t).unwrap().0, 5);
    assert_eq!(place(&mut s, "web", t).unwrap().0, 4);
    // A heartbeat brings the true count, which replaces the guesses.
    heartbeat(&mut s, 5, 0, 0, t);
    assert_eq!(place(&mut s, "web", t).unwrap().0, 5);
    // A second vNode gets the next id; the first keeps its own.
    assert_eq!(place(&mut s, "db", t).unwrap().2.id, 2);
    assert_eq!(place(&mut s, "web", t).unwrap().2.id, 1);
}

#[test]
fn a_new_vnode_goes_to_the_storage_with_most_free_disk() {
    let t = Instant::now();
    let mut s = rack(t);
    register(&mut s, 0, Role::Storage, "s2:1", disk(4 * GIB), t);
    heartbeat(&mut s, 6, 0, 3 * GIB + 1, t);
    let o = s.handle(GlobalsRequest::PlaceRun { vnode: "a".into() }, t);
    let v = VNode {
        name: "a".into(),
        id: 1,
        storage: 3,
    };
    // The vNode, and the processor's grant for it, which the reply waits
    // for the storage component to have been sent.
    let grant = Grant {
        vnode: 1,
        processor: 4,
    };
    assert_eq!(
        o.records,
        vec![Record::VNode(v.clone()), Record::Grant(grant)]
    );
    assert_eq!(o.await_grant, Some((3, 1)));
    // Locate makes no new vNode (the least loaded processor is another
    // one now, which gets a grant of its own).
    let o = s.handle(GlobalsRequest::Locate { vnode: "a".into() }, t);
    assert!(o.records.iter().all(|r| matches!(r, Record::Grant(_))));
    let o = s.handle(GlobalsRequest::Locate { vnode: "a".into() }, t);
    assert!(o.records.is_empty());
    assert_eq!(o.await_grant, None);
    // The storage component's heartbeat carries the grants of its vNodes.
    assert_eq!(s.grants_sent(3), 0);
    let GlobalsReply::Grants { version, grants } = heartbeat(&mut s, 3, 0, 0, t) else {
        panic!("a storage heartbeat is answered with grants");
    };
    assert!(grants.contains(&grant) && grants.iter().all(|g| g.vnode == 1));
    assert_eq!(s.grants_sent(3), version);
    assert_eq!(
        heartbeat(&mut s, 6, 0, 0, t),
        GlobalsReply::Grants {
            version,
            grants: vec![]
        }
    );
    assert!(matches!(o.reply, GlobalsReply::Placed { vnode, .. } if vnode == v));
}

#[test]
fn a_vnode_whose_storage_is_down_cannot_run() {
    let t = Instant::now();
    let mut s = rack(t);
    place(&mut s, "web", t).unwrap();
    let later = ms(t, DOWN_AFTER_MS + 1);
    for id in [1, 2, 4, 5] {
        heartbeat(&mut s, id, 0, 0, later);
    }
    let e = place(&mut s, "web", later).unwrap_err();
    assert_eq!(
        e,
        "storage component 3 (s:1) is down; vNode web's files are there"
    );
}

#[test]
fn without_a_processor_or_memory_placement_says_what_to_start() {
    let t = Instant::now();
    let mut s = State::restore(Vec::new(), Vec::new(), Vec::new(), t);
    register(&mut s, 0, Role::Storage, "s:1", disk(GIB), t);
    let e = place(&mut s, "web", t).unwrap_err();
    assert!(
        e.contains("no processor is up") && e.contains("lego up"),
        "{e}"
    );
    register(&mut s, 0, Role::Processor, "p:1", Resources::default(), t);
    let e = place(&mut s, "web", t).unwrap_err();
    assert!(e.contains("no memory component is up"), "{e}");
    // Files need no memory: Locate answers with home 0.
    match s
        .handle(
            GlobalsRequest::Locate {
                vnode: "web".into(),
            },
            t,
        )
        .reply
    {
        GlobalsReply::Placed { home, .. } => assert_eq!(home, 0),
        other => panic!("{other:?}"),
    }
}

#[test]
fn bad_vnode_names_are_refused() {
    let t = Instant::now();
    let mut s = rack(t);
    for bad in ["", "../x", "a b", ".hidden", &"x".repeat(65)] {
        let e = place(&mut s, bad, t).unwrap_err();
        assert!(e.contains("is not a vNode name"), "{e}");
    }
}

#[test]
fn a_restored_state_knows_ids_and_vnodes_but_nothing_is_up() {
    let t = Instant::now();
    let v = VNode {
        name: "web".into(),
        id: 4,
        storage: 2,
    };
    let ids = vec![
        (1, "m:1".to_string(), Role::Memory),
        (2, "s:1".to_string(), Role::Storage),
    ];
    let mut s = State::restore(ids, vec![v.clone()], Vec::new(), t);
    assert_eq!(s.counts(), (2, 1));
    let later = ms(t, 1500);
    let comps = s.components(later);
    assert!(comps.iter().all(|c| !c.up && c.silent_ms == 1500));
    // Restored components were never heard: no down transition to report.
    assert!(s.sweep(later).is_empty());
    // Heartbeats are refused until they register; then the same id.
    assert!(matches!(
        heartbeat(&mut s, 2, 0, 0, later),
        GlobalsReply::Error(_)
    ));
    let o = register(&mut s, 0, Role::Storage, "s:1", disk(GIB), later);
    assert_eq!(registered_id(&o), 2);
    assert!(o.records.is_empty());
    assert!(matches!(
        heartbeat(&mut s, 2, 0, 0, later),
        GlobalsReply::Grants { .. }
    ));
    // New vNodes continue after the restored ones.
    register(&mut s, 0, Role::Memory, "m:1", mem(GIB), later);
    register(
        &mut s,
        0,
        Role::Processor,
        "p:1",
        Resources::default(),
        later,
    );
    assert_eq!(place(&mut s, "web", later).unwrap().2, v);
    assert_eq!(place(&mut s, "db", later).unwrap().2.id, 5);
}

#[test]
fn with_two_copies_each_memory_component_gets_a_backup_and_another_once_it_is_down() {
    let t = Instant::now();
    let mut s = rack(t).with_copies(2);
    let backup_of = |s: &mut State, id, now| match heartbeat(s, id, 0, 0, now) {
        GlobalsReply::Peers { backup, .. } => backup,
        other => panic!("{other:?}"),
    };
    // Memory 1 and 2 back up each other; storage and processors get none.
    assert_eq!(backup_of(&mut s, 2, t), 1);
    assert_eq!(backup_of(&mut s, 1, t), 2);
    assert_eq!(backup_of(&mut s, 4, t), 0);
    // Kept while the backup is silent and no other is up (its copy is
    // where it was made).
    let later = ms(t, DOWN_AFTER_MS + 100);
    assert_eq!(backup_of(&mut s, 1, later), 2);
    // A newcomer gets one of those up: memory 1 (memory 2 is silent).
    let o = register(&mut s, 0, Role::Memory, "m3:1", mem(GIB), later);
    let m3 = registered_id(&o);
    assert_eq!(backup_of(&mut s, m3, later), 1);
    // Memory 1's backup is down and another is up: the newcomer takes its
    // place (processors copy memory 1's processes there).
    assert_eq!(backup_of(&mut s, 1, later), m3);
    assert_eq!(backup_of(&mut s, 1, ms(t, DOWN_AFTER_MS + 200)), m3);
    // One copy (the default): no backups.
    let mut one = rack(t);
    assert_eq!(backup_of(&mut one, 1, t), 0);
}

#[test]
fn restarted_managers_keep_the_backup_a_memory_component_reports() {
    let t = Instant::now();
    let mut s = rack(t).with_copies(2);
    let m3 = registered_id(&register(&mut s, 0, Role::Memory, "m3:1", mem(GIB), t));
    let beat = |s: &mut State, id: u32, backup: u32| {
        let load = Load {
            backup,
            ..Load::default()
        };
        match s.handle(GlobalsRequest::Heartbeat { id, load }, t).reply {
            GlobalsReply::Peers { backup, .. } => backup,
            other => panic!("{other:?}"),
        }
    };
    // By the rule memory 1 would get memory 2 (the most free memory); it
    // reports memory 3, where processors keep its copies: that stands.
    assert_eq!(beat(&mut s, 1, m3), m3);
    assert_eq!(beat(&mut s, 1, 0), m3);
    // A reported backup that is not an up memory component is not taken.
    assert_eq!(beat(&mut s, 2, 3), 1);
}
