"""One rating per person, target and day; stand card views; the exhibitor survey

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("feedback") as batch:
        batch.add_column(sa.Column("day", sa.Date(), nullable=True))
    # Ratings given before: their UTC day (close enough to the fair's), and only the latest
    # of a person's ratings of the same target on a day is kept, as from now on.
    feedback = sa.table("feedback", sa.column("id", sa.Integer()),
                        sa.column("created_at", sa.DateTime()), sa.column("day", sa.Date()),
                        sa.column("fair_id", sa.Integer()), sa.column("contact_id", sa.Integer()),
                        sa.column("target_kind", sa.String()),
                        sa.column("target_key", sa.String()))
    connection = op.get_bind()
    created = feedback.c.created_at
    day = (sa.func.date(created) if connection.dialect.name == "sqlite"
           else sa.cast(created, sa.Date))
    connection.execute(sa.update(feedback).values(day=day))
    newer = feedback.alias("newer")
    connection.execute(sa.delete(feedback).where(sa.exists().where(
        newer.c.fair_id == feedback.c.fair_id, newer.c.contact_id == feedback.c.contact_id,
        newer.c.target_kind == feedback.c.target_kind,
        newer.c.target_key == feedback.c.target_key, newer.c.day == feedback.c.day,
        newer.c.id > feedback.c.id)))
    with op.batch_alter_table("feedback") as batch:
        batch.create_unique_constraint(
            op.f("uq_feedback_fair_id"),
            ["fair_id", "contact_id", "target_kind", "target_key", "day"])

    op.create_table(
        "stand_card_views",
        sa.Column("fair_id", sa.Integer(), nullable=False),
        sa.Column("stand_number", sa.String(length=16), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("views", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["fair_id"], ["fairs.id"],
                                name=op.f("fk_stand_card_views_fair_id_fairs"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("fair_id", "stand_number", "day",
                                name=op.f("pk_stand_card_views")),
    )
    op.create_table(
        "exhibitor_surveys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("fair_id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("exhibitor_id", sa.Integer(), nullable=True),
        sa.Column("satisfaction", sa.Integer(), nullable=True),
        sa.Column("come_again", sa.Boolean(), nullable=True),
        sa.Column("sales_band", sa.String(length=16), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["fair_id"], ["fairs.id"],
                                name=op.f("fk_exhibitor_surveys_fair_id_fairs"),
                                ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["contact_id"], ["contacts.id"],
                                name=op.f("fk_exhibitor_surveys_contact_id_contacts"),
                                ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["exhibitor_id"], ["exhibitors.id"],
                                name=op.f("fk_exhibitor_surveys_exhibitor_id_exhibitors"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_exhibitor_surveys")),
        sa.UniqueConstraint("fair_id", "contact_id", name=op.f("uq_exhibitor_surveys_fair_id")),
    )


def downgrade() -> None:
    op.drop_table("exhibitor_surveys")
    op.drop_table("stand_card_views")
    with op.batch_alter_table("feedback") as batch:
        batch.drop_constraint(op.f("uq_feedback_fair_id"), type_="unique")
        batch.drop_column("day")
