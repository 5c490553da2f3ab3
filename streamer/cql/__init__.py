"""CQL helpers shared by the Scylla adapters: one way to connect, fan out and migrate.

`connection` opens a session (ScyllaDB in production, Cassandra in tests); `fanout` bounds the
statements in flight; `schema` is the numbered migrations `streamer db migrate` applies.
"""

from streamer.cql.connection import Cql, CqlSession, open_cql_session

__all__ = ["Cql", "CqlSession", "open_cql_session"]
