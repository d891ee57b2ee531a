"""Personal data: ratings, survey answers and messages outlive their erased author; the
catalogue's privacy notice; the count of erased people

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("fairs") as batch:
        batch.add_column(sa.Column("privacy", sa.JSON(), nullable=True))
    with op.batch_alter_table("feedback") as batch:
        batch.alter_column("contact_id", existing_type=sa.Integer(), nullable=True)
    with op.batch_alter_table("exhibitor_surveys") as batch:
        batch.alter_column("contact_id", existing_type=sa.Integer(), nullable=True)
    with op.batch_alter_table("outbox") as batch:
        batch.alter_column("contact_id", existing_type=sa.Integer(), nullable=True)
        batch.drop_constraint(op.f("fk_outbox_contact_id_contacts"), type_="foreignkey")
        batch.create_foreign_key(op.f("fk_outbox_contact_id_contacts"), "contacts",
                                 ["contact_id"], ["id"], ondelete="SET NULL")
    op.create_table(
        "erased_contacts",
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("quarter", sa.Integer(), nullable=False),
        sa.Column("people", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("channel", "language", "quarter",
                                name=op.f("pk_erased_contacts")),
    )


def downgrade() -> None:
    op.drop_table("erased_contacts")
    op.execute("DELETE FROM outbox WHERE contact_id IS NULL")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_constraint(op.f("fk_outbox_contact_id_contacts"), type_="foreignkey")
        batch.create_foreign_key(op.f("fk_outbox_contact_id_contacts"), "contacts",
                                 ["contact_id"], ["id"], ondelete="CASCADE")
        batch.alter_column("contact_id", existing_type=sa.Integer(), nullable=False)
    op.execute("DELETE FROM exhibitor_surveys WHERE contact_id IS NULL")
    with op.batch_alter_table("exhibitor_surveys") as batch:
        batch.alter_column("contact_id", existing_type=sa.Integer(), nullable=False)
    op.execute("DELETE FROM feedback WHERE contact_id IS NULL")
    with op.batch_alter_table("feedback") as batch:
        batch.alter_column("contact_id", existing_type=sa.Integer(), nullable=False)
    with op.batch_alter_table("fairs") as batch:
        batch.drop_column("privacy")
