//! A pooled connection that prepares each hot statement once.
//!
//! rust-postgres prepares a `&str` query on every call (a Parse and a
//! Describe round trip, and the planner's work on the server) and closes it
//! afterwards. The intake path runs the same few statements for every
//! request, so [`Conn`] keeps the [`Statement`]s it prepared, keyed by their
//! text, for the life of the connection. Only `&'static str` statements are
//! cached: a query built at run time (`format!`) is not a hot one and would
//! grow the map without bound.

use std::collections::HashMap;
use std::ops::{Deref, DerefMut};

use postgres::types::ToSql;
use postgres::{Client, GenericClient, Row, Statement, Transaction};

use crate::error::Result;

/// A client and the statements prepared on it. Derefs to [`Client`], so
/// code that needs no cache uses it as one.
pub struct Conn {
    client: Client,
    prepared: Prepared,
}

/// The statements prepared on one connection, by text. A statement is valid
/// only on the connection that prepared it, which is why the map lives
/// beside its client and dies with it.
#[derive(Default)]
pub struct Prepared(HashMap<&'static str, Statement>);

impl Prepared {
    /// The statement for `sql`, prepared through `client` the first time.
    /// Prepared statements outlive the transaction they were prepared in
    /// (they belong to the session), so preparing inside one is fine.
    fn get(&mut self, client: &mut impl GenericClient, sql: &'static str) -> Result<Statement> {
        if let Some(s) = self.0.get(sql) {
            return Ok(s.clone());
        }
        let s = client.prepare(sql)?;
        self.0.insert(sql, s.clone());
        Ok(s)
    }
}

impl Conn {
    /// Wraps a new connection with an empty cache.
    pub fn new(client: Client) -> Self {
        Self {
            client,
            prepared: Prepared::default(),
        }
    }

    /// Starts a transaction whose statements go through the cache.
    pub fn begin(&mut self) -> Result<Tx<'_>> {
        Ok(Tx {
            tx: self.client.transaction()?,
            prepared: &mut self.prepared,
        })
    }

    /// Runs a cached statement outside a transaction; rows affected.
    pub fn exec(&mut self, sql: &'static str, params: &[&(dyn ToSql + Sync)]) -> Result<u64> {
        let s = self.prepared.get(&mut self.client, sql)?;
        Ok(self.client.execute(&s, params)?)
    }

    /// Runs a cached query outside a transaction; at most one row.
    pub fn one_or_none(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>> {
        let s = self.prepared.get(&mut self.client, sql)?;
        Ok(self.client.query_opt(&s, params)?)
    }

    /// Runs a cached query outside a transaction; exactly one row.
    pub fn one(&mut self, sql: &'static str, params: &[&(dyn ToSql + Sync)]) -> Result<Row> {
        let s = self.prepared.get(&mut self.client, sql)?;
        Ok(self.client.query_one(&s, params)?)
    }

    /// Runs a cached query outside a transaction; every row.
    pub fn rows(&mut self, sql: &'static str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>> {
        let s = self.prepared.get(&mut self.client, sql)?;
        Ok(self.client.query(&s, params)?)
    }
}

impl Deref for Conn {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.client
    }
}

impl DerefMut for Conn {
    fn deref_mut(&mut self) -> &mut Client {
        &mut self.client
    }
}

/// A transaction on a [`Conn`] whose statements are prepared once per
/// connection. Rolled back on drop unless committed.
pub struct Tx<'c> {
    tx: Transaction<'c>,
    prepared: &'c mut Prepared,
}

impl Tx<'_> {
    /// Runs a cached statement; rows affected.
    pub fn exec(&mut self, sql: &'static str, params: &[&(dyn ToSql + Sync)]) -> Result<u64> {
        let s = self.prepared.get(&mut self.tx, sql)?;
        Ok(self.tx.execute(&s, params)?)
    }

    /// Runs a cached query; at most one row.
    pub fn one_or_none(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>> {
        let s = self.prepared.get(&mut self.tx, sql)?;
        Ok(self.tx.query_opt(&s, params)?)
    }

    /// Runs a cached query; exactly one row.
    pub fn one(&mut self, sql: &'static str, params: &[&(dyn ToSql + Sync)]) -> Result<Row> {
        let s = self.prepared.get(&mut self.tx, sql)?;
        Ok(self.tx.query_one(&s, params)?)
    }

    /// Runs a cached query; every row.
    pub fn rows(&mut self, sql: &'static str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>> {
        let s = self.prepared.get(&mut self.tx, sql)?;
        Ok(self.tx.query(&s, params)?)
    }

    /// Commits.
    pub fn commit(self) -> Result<()> {
        Ok(self.tx.commit()?)
    }
}
