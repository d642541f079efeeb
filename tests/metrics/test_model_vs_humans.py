import pytest
from django.utils import timezone

from accounts.roles import Role
from metrics.selectors.traffic import model_vs_humans, totals, traffic_cells
from metrics.selectors.windows import window_named
from metrics.services.rollups import rollups_refresh
from moderation.models import Upload
from reviews.models import QueueSettings
from reviews.services.claims import round_claim
from reviews.services.decisions import decision_create, decision_undo
from reviews.services.rounds import round_open
from tests.factories import make_round, make_upload, make_user
from tests.metrics.helpers import active, labelled


def figures(threshold=0.5):
    rollups_refresh()
    return model_vs_humans(traffic_cells(model_version=active(), window=window_named("24h")), threshold=threshold)


@pytest.mark.django_db
def test_a_published_confusion_matrix_gives_its_published_precision_recall_and_f1(moderator):
    # Wikipedia's "Precision and recall" example: 12 dogs and 10 cats; the program calls 8 of them
    # dogs, 5 rightly. Dogs are "harmful" here. Published: precision 5/8, recall 5/12, F1 0.5.
    for score, label, n in ((0.9, "harmful", 5), (0.1, "harmful", 7), (0.9, "safe", 3), (0.1, "safe", 7)):
        for _ in range(n):
            labelled(moderator, score, label)
    result = figures()
    assert result.labelled == 22
    assert result.confusion == [[7, 3], [7, 5]]
    assert result.harmful["precision"] == pytest.approx(5 / 8)
    assert result.harmful["recall"] == pytest.approx(5 / 12)
    assert result.harmful["f1-score"] == pytest.approx(0.5)
    assert result.harmful["support"] == 12
    assert result.report["safe"]["precision"] == pytest.approx(7 / 14)
    assert result.accuracy == pytest.approx(12 / 22)
    # Two score values only: the ROC has one inner point (FPR 3/10, TPR 5/12).
    assert result.roc_auc == pytest.approx(0.5 * (1 + 5 / 12 - 3 / 10))


@pytest.mark.django_db
def test_figures_match_scikit_learn_on_the_raw_decisions(moderator):
    from sklearn import metrics as skm

    rows = [(0.95, 1), (0.8, 1), (0.7, 0), (0.6, 1), (0.45, 0), (0.4, 1), (0.3, 0), (0.2, 0), (0.05, 0), (0.9, 0)]
    for score, harmful in rows:
        labelled(moderator, score, "harmful" if harmful else "safe")
    result = figures(threshold=0.5)
    y = [h for _, h in rows]
    s = [score for score, _ in rows]
    predicted = [int(score >= 0.5) for score in s]
    assert result.confusion == skm.confusion_matrix(y, predicted).tolist()
    assert result.harmful["f1-score"] == pytest.approx(skm.f1_score(y, predicted))
    assert result.roc_auc == pytest.approx(skm.roc_auc_score(y, s))  # distinct bins: exact


@pytest.mark.django_db
def test_only_the_standing_decision_counts(moderator):
    first = labelled(moderator, 0.9, "safe")
    decision_undo(moderator=moderator)
    reopened = first.upload.review_rounds.get(status="open")
    decision_create(round_id=reopened.pk, moderator=moderator, label="harmful")
    result = figures()
    assert result.labelled == 1 and result.confusion == [[0, 0], [0, 1]]


@pytest.mark.django_db
def test_audits_count_as_overturned_when_the_human_disagrees(moderator):
    for score, status, label in (
        (0.0001, "approved", "harmful"),
        (0.0001, "approved", "safe"),
        (0.99, "rejected", "safe"),
    ):
        upload = make_upload()
        round_ = make_round(upload, score=score)
        # Turn it into an automatic decision that QC sampled for audit.
        now = timezone.now()
        Upload.objects.filter(pk=upload.pk).update(status=status, decided_by="auto", routed_at=now, decided_at=now)
        round_.delete()
        upload.refresh_from_db()
        audit = round_claim(round_id=round_open(upload=upload, reason="audit").pk, moderator=moderator)
        decision_create(round_id=audit.pk, moderator=moderator, label=label, revealed=True)
    rollups_refresh()
    counts = totals(traffic_cells(model_version=active(), window=window_named("24h")))
    assert (counts["auto_approved"], counts["auto_rejected"], counts["queued"]) == (2, 1, 0)
    assert (counts["audited"], counts["overturned"]) == (3, 2)


@pytest.mark.django_db
def test_moderator_agreement_from_second_reviews(moderator):
    QueueSettings.objects.update_or_create(pk=1, defaults={"second_review_rejects": True})
    other = make_user(Role.MODERATOR)
    for second_label in ("harmful", "safe", "harmful"):
        first = labelled(moderator, 0.7, "harmful")
        second = first.upload.review_rounds.get(status="open")
        round_claim(round_id=second.pk, moderator=other)
        decision_create(round_id=second.pk, moderator=other, label=second_label)
    labelled(moderator, 0.2, "safe")  # one moderator only: not compared
    rollups_refresh()
    counts = totals(traffic_cells(model_version=active(), window=window_named("24h")))
    assert (counts["peer_compared"], counts["peer_agreed"]) == (3, 2)
    assert (counts["queued"], counts["scored"]) == (4, 4)


@pytest.mark.django_db
def test_refresh_is_incremental_and_a_rebuild_gives_the_same_rows(moderator):
    labelled(moderator, 0.9, "harmful")
    assert rollups_refresh() >= 1
    assert figures().labelled == 1
    labelled(moderator, 0.2, "safe")
    assert figures().labelled == 2
    from metrics.models import ScoreCell

    before = sorted(ScoreCell.objects.values_list("cell", "scored", "labelled_harmful", "labelled_safe"))
    rollups_refresh(rebuild=True)
    assert sorted(ScoreCell.objects.values_list("cell", "scored", "labelled_harmful", "labelled_safe")) == before
