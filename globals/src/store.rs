//! The managers' durable decisions, in a redb database (`globals.redb` in
//! the state directory): which id each fabric address holds, and the
//! vNodes. A decision is committed (redb's default durability: on disk
//! when `commit` returns) before the reply that tells anyone about it, so a
//! `kill -9` of `lego-globals` loses nothing a component or user was told.
//!
//! redb also locks the file: a second `lego-globals` on the same state
//! directory is refused rather than sharing it.

use std::path::{Path, PathBuf};

use lego_control::{Role, VNode};
use redb::{Database, ReadableTable, TableDefinition};

use crate::state::Record;

/// id → (fabric address, role code).
const COMPONENTS: TableDefinition<u32, (&str, u8)> = TableDefinition::new("components");
/// vNode name → (id, storage component id).
const VNODES: TableDefinition<&str, (u32, u32)> = TableDefinition::new("vnodes");
/// (vNode id, processor id): the processor may act for the vNode.
const GRANTS: TableDefinition<(u32, u32), ()> = TableDefinition::new("grants");

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create the state directory {path}: {source}")]
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is in use by another lego-globals; stop it, or give this one another --state")]
    InUse { path: PathBuf },
    #[error("the state database {path}: {source}")]
    Db {
        path: PathBuf,
        source: Box<redb::Error>,
    },
    #[error("the state database {path} holds an unknown role code {code} for component {id}")]
    BadRole { path: PathBuf, id: u32, code: u8 },
}

/// What a store held when opened.
pub struct Loaded {
    pub components: Vec<(u32, String, Role)>,
    pub vnodes: Vec<VNode>,
    pub grants: Vec<lego_control::Grant>,
}

pub struct Store {
    db: Database,
    path: PathBuf,
}

fn role_code(role: Role) -> u8 {
    match role {
        Role::Processor => 1,
        Role::Memory => 2,
        Role::Storage => 3,
    }
}

fn role_of(code: u8) -> Option<Role> {
    match code {
        1 => Some(Role::Processor),
        2 => Some(Role::Memory),
        3 => Some(Role::Storage),
        _ => None,
    }
}

impl Store {
    /// Opens (or creates) `dir/globals.redb` and reads what it holds.
    pub fn open(dir: &Path) -> Result<(Store, Loaded), StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Dir {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = dir.join("globals.redb");
        let db = match Database::create(&path) {
            Ok(db) => db,
            Err(redb::DatabaseError::DatabaseAlreadyOpen) => {
                return Err(StoreError::InUse { path })
            }
            Err(e) => return Err(db_error(&path, e)),
        };
        let store = Store { db, path };
        // Make both tables exist, so that a fresh store reads as empty.
        store.write(&[])?;
        let loaded = store.load()?;
        Ok((store, loaded))
    }

    fn load(&self) -> Result<Loaded, StoreError> {
        let tx = self.db.begin_read().map_err(|e| db_error(&self.path, e))?;
        let mut components = Vec::new();
        let table = tx
            .open_table(COMPONENTS)
            .map_err(|e| db_error(&self.path, e))?;
        for row in table.iter().map_err(|e| db_error(&self.path, e))? {
            let (k, v) = row.map_err(|e| db_error(&self.path, e))?;
            let id = k.value();
            let (fabric, code) = v.value();
            let role = role_of(code).ok_or_else(|| StoreError::BadRole {
                path: self.path.clone(),
                id,
                code,
            })?;
            components.push((id, fabric.to_string(), role));
        }
        let mut vnodes = Vec::new();
        let table = tx.open_table(VNODES).map_err(|e| db_error(&self.path, e))?;
        for row in table.iter().map_err(|e| db_error(&self.path, e))? {
            let (k, v) = row.map_err(|e| db_error(&self.path, e))?;
            let (id, storage) = v.value();
            vnodes.push(VNode {
                name: k.value().to_string(),
                id,
                storage,
            });
        }
        let mut grants = Vec::new();
        let table = tx.open_table(GRANTS).map_err(|e| db_error(&self.path, e))?;
        for row in table.iter().map_err(|e| db_error(&self.path, e))? {
            let (k, _) = row.map_err(|e| db_error(&self.path, e))?;
            let (vnode, processor) = k.value();
            grants.push(lego_control::Grant { vnode, processor });
        }
        Ok(Loaded {
            components,
            vnodes,
            grants,
        })
    }

    /// Keeps `records` in one transaction, durable when this returns.
    pub fn write(&self, records: &[Record]) -> Result<(), StoreError> {
        let tx = self.db.begin_write().map_err(|e| db_error(&self.path, e))?;
        {
            let mut components = tx
                .open_table(COMPONENTS)
                .map_err(|e| db_error(&self.path, e))?;
            let mut vnodes = tx.open_table(VNODES).map_err(|e| db_error(&self.path, e))?;
            let mut grants = tx.open_table(GRANTS).map_err(|e| db_error(&self.path, e))?;
            for r in records {
                match r {
                    Record::Assign { id, fabric, role } => {
                        components
                            .insert(*id, (fabric.as_str(), role_code(*role)))
                            .map_err(|e| db_error(&self.path, e))?;
                    }
                    Record::Forget { id } => {
                        components
                            .remove(*id)
                            .map_err(|e| db_error(&self.path, e))?;
                    }
                    Record::VNode(v) => {
                        vnodes
                            .insert(v.name.as_str(), (v.id, v.storage))
                            .map_err(|e| db_error(&self.path, e))?;
                    }
                    Record::Grant(g) => {
                        grants
                            .insert((g.vnode, g.processor), ())
                            .map_err(|e| db_error(&self.path, e))?;
                    }
                }
            }
        }
        tx.commit().map_err(|e| db_error(&self.path, e))
    }
}

fn db_error(path: &Path, e: impl Into<redb::Error>) -> StoreError {
    StoreError::Db {
        path: path.to_path_buf(),
        source: Box::new(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let v = VNode {
            name: "web".into(),
            id: 1,
            storage: 3,
        };
        {
            let (store, loaded) = Store::open(dir.path()).unwrap();
            assert!(loaded.components.is_empty() && loaded.vnodes.is_empty());
            store
                .write(&[
                    Record::Assign {
                        id: 1,
                        fabric: "a:1".into(),
                        role: Role::Memory,
                    },
                    Record::Assign {
                        id: 3,
                        fabric: "s:1".into(),
                        role: Role::Storage,
                    },
                    Record::VNode(v.clone()),
                ])
                .unwrap();
            store.write(&[Record::Forget { id: 1 }]).unwrap();
            // A second opener of the same directory is refused.
            assert!(matches!(
                Store::open(dir.path()),
                Err(StoreError::InUse { .. })
            ));
        }
        let (_store, loaded) = Store::open(dir.path()).unwrap();
        assert_eq!(
            loaded.components,
            vec![(3, "s:1".to_string(), Role::Storage)]
        );
        assert_eq!(loaded.vnodes, vec![v]);
    }
}
