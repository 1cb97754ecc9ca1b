import torch
import torch.nn.functional as F

from text2token.losses import token_target_kl
from text2token.pooling import last_token_pool, mean_pool, position_ids_from_mask


def test_loss_equals_hand_computed_kl():
    torch.manual_seed(0)
    logits = torch.randn(2, 10)
    ids = torch.tensor([[1, 4, 7], [2, 0, 0]])
    weights = torch.tensor([[0.5, 0.3, 0.2], [1.0, 0.0, 0.0]])
    p = logits.softmax(-1)
    by_hand = ((0.5 * torch.log(0.5 / p[0, 1]) + 0.3 * torch.log(0.3 / p[0, 4]) + 0.2 * torch.log(0.2 / p[0, 7]))
               + torch.log(1.0 / p[1, 2])) / 2
    loss = token_target_kl(logits, ids, weights)
    torch.testing.assert_close(loss, by_hand)
    dense_q = torch.zeros(2, 10).scatter_add_(1, ids, weights)
    torch.testing.assert_close(loss, F.kl_div(logits.log_softmax(-1), dense_q, reduction="batchmean"))


def test_loss_is_zero_when_prediction_matches_target():
    logits = torch.full((1, 5), -1e4)
    logits[0, 3] = 1e4
    assert token_target_kl(logits, torch.tensor([[3]]), torch.tensor([[1.0]])).item() == 0.0


def test_loss_runs_in_fp32_for_half_logits():
    logits = torch.randn(2, 10).to(torch.bfloat16)
    loss = token_target_kl(logits, torch.tensor([[1], [2]]), torch.tensor([[1.0], [1.0]]))
    assert loss.dtype == torch.float32


def test_last_token_pool_finds_last_real_token_on_both_sides():
    hidden = torch.arange(2 * 4 * 1, dtype=torch.float32).view(2, 4, 1)
    right = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]])
    left = torch.tensor([[0, 1, 1, 1], [0, 0, 1, 1]])
    assert last_token_pool(hidden, right).squeeze(-1).tolist() == [2.0, 5.0]
    assert last_token_pool(hidden, left).squeeze(-1).tolist() == [3.0, 7.0]


def test_mean_pool_ignores_padding():
    hidden = torch.tensor([[[1.0], [3.0], [100.0]]])
    assert mean_pool(hidden, torch.tensor([[1, 1, 0]])).item() == 2.0


def test_position_ids_count_real_tokens_only():
    mask = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 0, 0]])
    assert position_ids_from_mask(mask).tolist() == [[0, 0, 0, 1, 2], [0, 1, 2, 2, 2]]


def test_simcse_loss_is_cross_entropy_over_scaled_cosines():
    from text2token.losses import in_batch_contrastive

    torch.manual_seed(0)
    a, b = torch.randn(3, 8), torch.randn(3, 8)
    sims = F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).T / 0.05
    by_hand = -torch.stack([sims[i].log_softmax(-1)[i] for i in range(3)]).mean()
    torch.testing.assert_close(in_batch_contrastive(a, b, 0.05), by_hand)
    assert in_batch_contrastive(a, a, 0.05).item() < in_batch_contrastive(a, b, 0.05).item()
