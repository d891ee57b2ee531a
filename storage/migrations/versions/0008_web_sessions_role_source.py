"""Web chat sessions issued by the server; where an organizer's role comes from

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "web_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("public_id", sa.String(length=32), nullable=False),
        sa.Column("client_hash", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_web_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_web_sessions_token_hash")),
        sa.UniqueConstraint("public_id", name=op.f("uq_web_sessions_public_id")),
    )
    with op.batch_alter_table("contacts") as batch:
        batch.add_column(sa.Column("role_source", sa.String(length=16), nullable=True))
    # Organizers before this revision were given their role by the setting or the command line,
    # which cannot be told apart now: keep them, as the command line's would be kept.
    contacts = sa.table("contacts", sa.column("role", sa.String()),
                        sa.column("role_source", sa.String()))
    op.get_bind().execute(sa.update(contacts).where(contacts.c.role == "organizer")
                          .values(role_source="cli"))


def downgrade() -> None:
    with op.batch_alter_table("contacts") as batch:
        batch.drop_column("role_source")
    op.drop_table("web_sessions")
