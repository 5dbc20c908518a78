"""The transparency log's tables: its leaves, the hashes of its complete subtrees, and the
checkpoints the worker signed. All three are append-only (database triggers, migration 0022)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Integer, SmallInteger, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from portal.db import Base, UTCDateTime, hex_digest


class TransparencyLeaf(Base):
    """Leaf ``leaf_index`` (0-based) is the public digest of audit event ``leaf_index + 1``:
    ``record`` is the leaf itself (canonical JSON, see :mod:`portal.transparency.log`)."""

    __tablename__ = "transparency_leaf"
    __table_args__ = (hex_digest("leaf_hash"),)

    leaf_index: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    record: Mapped[str] = mapped_column(Text)
    leaf_hash: Mapped[str] = mapped_column(String(64), unique=True)


class TransparencyNode(Base):
    """The hash of a complete subtree: leaves ``[node_index << level, (node_index + 1) <<
    level)``; level 0 holds the leaf hashes. Stored once all its leaves exist, never changed."""

    __tablename__ = "transparency_node"
    __table_args__ = (hex_digest("hash"),)

    level: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    node_index: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[str] = mapped_column(String(64))


class TransparencyCheckpoint(Base):
    """A signed checkpoint: ``body`` is the C2SP note text signed, ``signature`` the
    detached armoured OpenPGP signature over its UTF-8 bytes."""

    __tablename__ = "transparency_checkpoint"
    __table_args__ = (
        UniqueConstraint("tree_size", "signer_fingerprint"),
        hex_digest("root_hash"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tree_size: Mapped[int] = mapped_column(BigInteger, index=True)
    root_hash: Mapped[str] = mapped_column(String(64))
    origin: Mapped[str] = mapped_column(String(255))
    body: Mapped[str] = mapped_column(Text)
    signature: Mapped[str] = mapped_column(Text)
    signer_fingerprint: Mapped[str] = mapped_column(String(64))
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime())
