import math

import pytest
import torch

from makemore.models import LANGUAGE_MODELS, build_model, model_config

V = 11


def make(name, **overrides):
    torch.manual_seed(0)
    return build_model(name, model_config(name, vocab_size=V, **overrides))


@pytest.mark.parametrize("name", LANGUAGE_MODELS)
def test_shapes_and_loss_contract(name):
    model = make(name)
    idx = torch.randint(V, (4, 9))
    logits, loss = model(idx)
    assert logits.shape == (4, 9, V) and loss is None
    assert model.body(idx).shape[:2] == (4, 9)
    logits, loss = model(idx, torch.randint(V, (4, 9)))
    assert loss.shape == () and math.isfinite(loss.item())


@pytest.mark.parametrize("name", LANGUAGE_MODELS)
def test_first_loss_is_about_uniform(name):
    model = make(name)
    idx = torch.randint(V, (64, 12))
    _, loss = model(idx, torch.randint(V, (64, 12)))
    assert abs(loss.item() - math.log(V)) < 0.1


@pytest.mark.parametrize("name", LANGUAGE_MODELS)
def test_causal_a_later_character_never_changes_an_earlier_prediction(name):
    model = make(name).eval()
    idx = torch.randint(V, (2, 10))
    changed = idx.clone()
    changed[:, 6:] = (changed[:, 6:] + 1) % V
    before, after = model(idx)[0], model(changed)[0]
    assert torch.allclose(before[:, :6], after[:, :6])
    assert not torch.allclose(before[:, 6:], after[:, 6:])


def test_mlp_reads_only_its_block():
    model = make("mlp", block_size=3).eval()
    idx = torch.randint(V, (1, 10))
    changed = idx.clone()
    changed[0, 2] = (changed[0, 2] + 1) % V
    diff = (model(idx)[0] - model(changed)[0]).abs().sum(-1)[0]  # per position
    assert diff[:2].max() == 0 and diff[2:5].min() > 0 and diff[5:].max() == 0


@pytest.mark.parametrize("name,overrides", [("mlp", {"norm": "batch", "n_layer": 2}), ("wavenet", {})])
def test_batchnorm_in_eval_mode_treats_items_alike_alone_or_in_a_batch(name, overrides):
    model = make(name, **overrides)
    model.train()
    for _ in range(5):  # move the running statistics away from their initial values
        model(torch.randint(V, (32, 8)))
    model.eval()
    idx = torch.randint(V, (6, 8))
    together = model(idx)[0]
    alone = torch.cat([model(idx[i:i + 1])[0] for i in range(6)])
    assert torch.allclose(together, alone, atol=1e-6)


def test_weight_decay_skips_biases_and_norm_gains():
    model = make("mlp", norm="layer")
    decay, no_decay = model.optimizer_groups(0.1)
    assert all(p.dim() >= 2 for p in decay["params"]) and all(p.dim() < 2 for p in no_decay["params"])
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))


@pytest.mark.parametrize("name", ["lstm", "gru", "rnn"])
def test_state_carried_across_windows_equals_one_long_forward_pass(name):
    model = make(name, n_layer=2).eval()
    idx = torch.randint(V, (3, 12))
    whole, _ = model.run(idx)
    first, state = model.run(idx[:, :5])
    second, _ = model.run(idx[:, 5:], state)
    assert torch.allclose(torch.cat([first, second], dim=1), whole, atol=1e-5)


@pytest.mark.parametrize("name", LANGUAGE_MODELS)
def test_stepping_one_token_at_a_time_matches_the_full_forward(name):
    model = make(name).eval()
    idx = torch.randint(V, (2, 7))
    logits, state = model.start(idx[:, :3])
    for t in range(3, 7):
        logits, state = model.step(state, idx[:, t:t + 1])
    assert torch.allclose(logits, model(idx)[0][:, -1], atol=1e-5)


def test_tied_weights_share_one_tensor():
    model = make("lstm", n_embd=32, n_hidden=32, tie_weights=True)
    assert model.lm_head.weight is model.wte.weight


def test_wavenet_has_the_lectures_size_and_needs_a_power_of_two():
    from makemore.errors import MakemoreError

    model = build_model("wavenet", model_config("wavenet", vocab_size=27))
    assert sum(p.numel() for p in model.parameters()) == 76_579  # nn-zero-to-hero part 5
    for block_size in (6, 1):  # 1 is 2**0, but there is no pair to merge
        with pytest.raises(MakemoreError, match="power of two from 2"):
            model_config("wavenet", vocab_size=27, block_size=block_size)



def test_transformer_sampling_with_its_key_value_cache_reads_as_the_whole_window_does():
    from makemore.models import build_model, model_config

    torch.manual_seed(0)
    model = build_model("transformer", model_config("transformer", vocab_size=30, block_size=12, n_layer=2,
                                                    n_head=2, n_embd=16, dropout=0.0)).eval()
    idx = torch.randint(30, (3, 30))
    logits, state = model.start(idx[:, :2])
    for t in range(2, 30):  # within the block (the cache) and past it (the window read again)
        whole = model(idx[:, max(0, t - 12):t])[0][:, -1]
        assert torch.allclose(logits, whole, atol=1e-5), t
        logits, state = model.step(state, idx[:, t:t + 1])
