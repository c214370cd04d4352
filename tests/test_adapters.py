"""The adapter's parts, each checked against what the paper says it must do (LLMRec §3.2-3.3).

Everything runs on a real augmented ml-100k (the session fixture) with real RecBole models;
only tensors the test itself constructs are synthetic (the pruning batch, cosine targets).
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from llmaug.adapters import adapt, shape_of
from llmaug.adapters.augedges import load_augmented_edges, sample_edges
from llmaug.adapters.losses import LARGEST, SMALLEST, bpr_per_triplet, kept_count, pruned, reconstruction_errors
from llmaug.adapters.model import AdapterMixin
from llmaug.errors import ConfigError, ModelError
from llmaug.recbole_compat import quiet_recbole
from llmaug.training import build_config

MODELS = ["BPR", "LightGCN", "NGCF", "SGL"]
ALL_OFF = {
    "llmaug_feature_weight": 0.0, "llmaug_aug_edge_ratio": 0.0, "llmaug_prune_ratio": 0.0,
    "llmaug_mae_weight": 0.0, "llmaug_weight_decay": 0.0,
}


# -- pure parts ---------------------------------------------------------------------------


def test_llmaugs_pruning_drops_exactly_the_largest_losses():
    losses = torch.tensor([0.1, 5.0, 0.3, 2.0, 0.2, 4.0, 0.4, 0.5, 0.6, 3.0], requires_grad=True)
    kept = pruned(losses, 0.3, LARGEST).sum()  # 10 triplets, drop floor(0.3 * 10) = 3: the 5.0, 4.0, 3.0
    small = torch.tensor([0.1, 0.3, 2.0, 0.2, 0.4, 0.5, 0.6])
    assert torch.isclose(kept, small.sum())
    kept.backward()
    dropped = torch.tensor([False, True, False, False, False, True, False, False, False, True])
    assert torch.all(losses.grad[dropped] == 0) and torch.all(losses.grad[~dropped] == 1)


def test_eq7_as_published_keeps_what_sort_ascend_of_log_sigma_keeps():
    """-SortAscend(log sigma(y+ - y-))[0:N], N = (1 - w4) * n, written out as Eq. 7 reads."""
    generator = torch.Generator().manual_seed(3)
    pos, neg = torch.randn(50, generator=generator), torch.randn(50, generator=generator)
    log_sigma = torch.nn.functional.logsigmoid(pos - neg)
    n_kept = kept_count(50, 0.4)
    assert n_kept == 30
    eq7 = -log_sigma.sort().values[:n_kept]  # ascending: the most negative log sigma, the largest losses, first
    kept = pruned(bpr_per_triplet(pos, neg), 0.4, SMALLEST)
    assert torch.allclose(kept.sort().values, eq7.sort().values)
    losses = bpr_per_triplet(pos, neg)
    assert losses.max() in kept and losses.max() not in pruned(losses, 0.4, LARGEST)  # llmaug's default: the other end


def test_pruning_off_keeps_every_loss_and_keeps_at_least_one():
    losses = torch.tensor([3.0, 1.0, 2.0])
    assert torch.equal(pruned(losses, 0.0), losses)
    assert torch.equal(pruned(torch.tensor([7.0, 1.0]), 0.99), torch.tensor([1.0]))
    assert torch.equal(pruned(torch.tensor([7.0, 1.0]), 0.99, SMALLEST), torch.tensor([7.0]))


def test_reconstruction_error_is_one_minus_cosine_to_the_gamma():
    target = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    same = torch.tensor([[3.0, 0.0], [0.0, 1.0]])
    orthogonal = torch.tensor([[0.0, 1.0], [5.0, 0.0]])
    opposite = -target
    assert reconstruction_errors(same, target, 2.0).tolist() == pytest.approx([0.0, 0.0], abs=1e-6)
    assert reconstruction_errors(orthogonal, target, 2.0).tolist() == pytest.approx([1.0, 1.0])
    assert reconstruction_errors(opposite, target, 2.0).tolist() == pytest.approx([4.0, 4.0])
    assert reconstruction_errors(opposite, target, 1.0).tolist() == pytest.approx([2.0, 2.0])
    # batched: one error per row of every leading index
    batched = reconstruction_errors(torch.stack([same, opposite]), torch.stack([target, target]), 1.0)
    assert torch.allclose(batched, torch.tensor([[0.0, 0.0], [2.0, 2.0]]), atol=1e-6)


def test_feature_dropout_keeps_one_minus_p_rescaled_and_is_off_in_eval():
    from llmaug.adapters.features import feature_dropout as dropout

    x = torch.ones(1000, 1000)
    y = dropout(x, 0.1, training=True)
    kept = y != 0
    assert kept.float().mean().item() == pytest.approx(0.9, abs=0.002)
    assert torch.allclose(y[kept], torch.full_like(y[kept], 1 / 0.9))
    assert not torch.equal(kept, dropout(x, 0.1, training=True) != 0)  # a fresh mask per call
    assert dropout(x, 0.1, training=False) is x and dropout(x, 0.0, training=True) is x


def test_principal_directions_span_what_the_svd_keeps():
    from llmaug.adapters.features import principal_directions

    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 40)) * np.linspace(3.0, 0.1, 40)  # a spectrum that falls off, as features' does
    kept = principal_directions(x, 8)
    svd = np.linalg.svd(x, full_matrices=False)[2][:8].T
    assert kept.shape == (40, 8) and np.allclose(kept.T @ kept, np.eye(8))
    assert np.allclose(np.abs(np.sum(kept * svd, axis=0)), 1.0)  # the same directions, one by one, up to sign


def test_mae_masks_a_fixed_share_of_the_present_rows_uniformly():
    from llmaug.adapters.features import ITEM, USER, FeatureEncoder, SideFeature
    from llmaug.adapters.mae import MaskedFeatureAutoencoder

    torch.manual_seed(0)
    users, items = torch.randn(6, 4), torch.randn(9, 4)
    users[[0, 2]] = 0  # padding row and a user without a profile
    items[0] = 0
    features = [SideFeature("profile", USER, users, users.abs().sum(1) > 0),
                SideFeature("attrs", ITEM, items, items.abs().sum(1) > 0)]
    encoder = FeatureEncoder(features, 6, 9, 8, 0.0, 0, None)
    (group,) = MaskedFeatureAutoencoder(features, encoder, None, 0, 0.5, 2.0).groups
    counts = torch.zeros(2, 9)
    for _ in range(400):
        rows = group.choose()
        for m, (present, size) in enumerate([(features[0].present, 2), (features[1].present, 4)]):
            chosen = rows[m, :size]
            assert chosen.unique().numel() == size and present[chosen].all()  # 50% of 4 and of 8
            counts[m, chosen] += 1
    # every present row is drawn about equally often; absent rows never
    assert counts[0, [0, 2]].sum() == 0 and counts[1, 0] == 0
    assert counts[0, [1, 3, 4, 5]].min() > 150 and counts[1, 1:].min() > 150


N_USERS, N_ITEMS, LAYERS = 4, 5, 2


def _tiny_graph(in_forward: bool = False):
    """(features, encoder, MAE group, adjacency) on a 4-user, 5-item graph with a 3-wide profile
    and item feature (row 0 padding), masking half of each feature's present rows."""
    import scipy.sparse as sp

    from llmaug.adapters.features import ITEM, USER, FeatureEncoder, SideFeature
    from llmaug.adapters.mae import MaskedFeatureAutoencoder

    torch.manual_seed(1)
    edges = [(1, 1), (1, 2), (2, 2), (2, 3), (3, 1), (3, 4), (3, 3)]
    a = sp.lil_matrix((N_USERS + N_ITEMS,) * 2)
    for u, i in edges:
        a[u, N_USERS + i] = a[N_USERS + i, u] = 1.0
    degree = np.asarray(a.sum(axis=1)).ravel() + 1e-7
    adjacency = (sp.diags(degree ** -0.5) @ a.tocsr() @ sp.diags(degree ** -0.5)).tocsr()
    users, items = torch.randn(N_USERS, 3), torch.randn(N_ITEMS, 3)
    users[0] = items[0] = 0
    features = [SideFeature("profile", USER, users, users.abs().sum(1) > 0),
                SideFeature("attrs", ITEM, items, items.abs().sum(1) > 0)]
    encoder = FeatureEncoder(features, N_USERS, N_ITEMS, 2, 0.0, LAYERS, adjacency)
    mae = MaskedFeatureAutoencoder(features, encoder, adjacency, LAYERS, 0.5, 2.0, in_forward=in_forward)
    return features, encoder, mae, adjacency


def _propagated_inputs(features, masked: dict[int, list[int]], token) -> np.ndarray:
    """[n_nodes, 4] node inputs [F, 1] with feature m's own rows ``masked[m]`` set to token[m]."""
    nodes = np.zeros((len(features), N_USERS + N_ITEMS, 4))
    for m, (f, offset) in enumerate([(features[0], 0), (features[1], N_USERS)]):
        own = slice(offset, offset + len(f.values))
        nodes[m, own, :3], nodes[m, own, 3] = f.values.numpy(), f.present.numpy()
        for row in masked.get(m, []):
            nodes[m, offset + row, :3] = token[m].detach().numpy()
    return nodes


def test_a_masked_node_is_encoded_as_if_its_own_feature_were_the_token():
    # Against a from-scratch computation: replace one node's input by the token, propagate over
    # the graph (LightGCN layer mean), project; the MAE's closed form must give the same vector.
    from llmaug.adapters.features import layer_mean

    features, encoder, mae, adjacency = _tiny_graph()
    (group,) = mae.groups
    rows = torch.tensor([[3, 1], [2, 4]])
    hidden = group.encode_masked(encoder, rows)
    for m, (f, offset) in enumerate([(features[0], 0), (features[1], N_USERS)]):
        weight = encoder.weights[0][encoder.slot[f.name][1]].detach().double()
        for j, row in enumerate(rows[m].tolist()):
            nodes = _propagated_inputs(features, {m: [row]}, group.token)[m]  # the mask token, own row only
            expected = torch.from_numpy(layer_mean(adjacency, nodes, LAYERS)[offset + row]) @ weight
            assert torch.allclose(hidden[m, j].double(), expected, atol=1e-5), (f.name, row)


def test_masking_in_the_forward_pass_masks_before_propagation_as_if_the_features_were_overwritten():
    # The reference overwrites the stored features of the masked nodes and then propagates; the
    # masked projection must equal that, for every node (neighbours see the token too), and L_FR
    # must read the same mask.
    from llmaug.adapters.features import layer_mean

    features, encoder, mae, adjacency = _tiny_graph(in_forward=True)
    (group,) = mae.groups
    projected = mae.masked_projection(encoder)
    rows, remembered = mae.step
    assert remembered is projected
    masked = {m: rows[0][m, :group.masked][group.real[m].bool()].tolist() for m in range(2)}
    assert all(masked.values())
    nodes = _propagated_inputs(features, masked, group.token)
    unmasked = encoder.projected()[0]
    for m, f in enumerate(features):
        weight = encoder.weights[0][encoder.slot[f.name][1]].detach().double()
        expected = torch.from_numpy(layer_mean(adjacency, nodes[m], LAYERS)) @ weight
        assert torch.allclose(projected[0][m].double(), expected, atol=1e-5), f.name
        assert not torch.allclose(projected[0][m], unmasked[m], atol=1e-4)  # the mask changed something
    hidden = projected[0][group.positions.unsqueeze(1), group.node_rows(rows[0])]
    expected_loss = mae.loss(encoder)
    mae.step = None
    assert not torch.isclose(mae.loss(encoder), expected_loss)  # a fresh mask, the closed form: another value
    mae.step = (rows, projected)
    assert torch.equal(mae.loss(encoder), expected_loss) and hidden.requires_grad


# -- on a real augmented ml-100k -------------------------------------------------------------


@pytest.fixture(scope="module")
def data(augmented_ml100k):
    """(directory, train, valid, test) dataloaders, built once; models share them."""
    with quiet_recbole():
        from recbole.data import create_dataset, data_preparation

        config = build_config(augmented_ml100k, "LightGCN")
        dataset = create_dataset(config)
        train, valid, test = data_preparation(config, dataset)
    return augmented_ml100k, train, valid, test


def make(data, model, adapted=True, seed=7, **overrides):
    directory, train, _, _ = data
    with quiet_recbole():
        from recbole.utils import get_model, init_seed

        config = build_config(directory, model, seed=seed, config_dict=overrides)
        init_seed(seed, True)
        cls = get_model(model)
        return (adapt(cls) if adapted else cls)(config, train._dataset), config


def a_batch(data, model):
    """One real training batch (with RecBole's sampled negatives)."""
    _, train, _, _ = data
    train.shuffle = False
    return next(iter(train))


def scores(model, data, users=None):
    if model.training:
        model.eval()
    from recbole.data.interaction import Interaction

    users = torch.arange(1, 60) if users is None else users
    with torch.no_grad():
        return model.full_sort_predict(Interaction({model.USER_ID: users})).view(len(users), -1)


def test_models_outside_the_registry_are_refused_or_inferred_in_one_line():
    from recbole.model.abstract_recommender import GeneralRecommender, SequentialRecommender
    from recbole.utils import InputType

    class MySequenceModel(SequentialRecommender):
        pass

    with pytest.raises(ModelError, match="train it plain with --base, or register it") as refusal:
        adapt(MySequenceModel)
    assert "\n" not in str(refusal.value)

    class NeedsInputs(GeneralRecommender):
        input_type = InputType.PAIRWISE

        def forward(self, user, item):
            return user

    with pytest.raises(ModelError, match="register it") as refusal:
        adapt(NeedsInputs)
    assert "\n" not in str(refusal.value)


def test_a_subclass_of_a_registered_model_is_adapted_by_the_same_mechanism():
    from recbole.utils import get_model

    class MyLightGCN(get_model("LightGCN")):
        pass

    assert shape_of(MyLightGCN) is shape_of(get_model("LightGCN"))


@pytest.mark.slow
def test_bad_knobs_are_config_errors(data):
    with pytest.raises(ConfigError, match="llmaug_prune_ratio"):
        make(data, "BPR", llmaug_prune_ratio=1.0)
    with pytest.raises(ConfigError, match="llmaug_mask_token"):
        make(data, "BPR", llmaug_mask_token="zeros")
    with pytest.raises(ConfigError, match="llmaug_mask_in_forward must be true or false"):
        make(data, "BPR", llmaug_mask_in_forward="yes")
    with pytest.raises(ConfigError, match="nonsense"):
        make(data, "BPR", llmaug_features=["nonsense"])
    with pytest.raises(ConfigError, match="llmaug_prune_scope is now llmaug_prune_over"):
        make(data, "BPR", llmaug_prune_scope="batch")
    with pytest.raises(ConfigError, match="llmaug_prune_drops must be largest_losses or smallest_losses"):
        make(data, "BPR", llmaug_prune_drops="largest")
    with pytest.raises(ConfigError, match="llmaug_prune_over must be llm_triplets or all_triplets"):
        make(data, "BPR", llmaug_prune_over="batch")


@pytest.mark.slow
def test_augmented_edges_are_read_with_internal_ids(data):
    directory, train, _, _ = data
    model, config = make(data, "BPR")
    edges = model.llmaug.aug_edges
    dataset = train._dataset
    rows = [line.split("\t") for line in (directory / "ml-100k.augedge").read_text().splitlines()[1:]]
    assert len(edges) == len(rows) > 0
    first = [dataset.id2token(dataset.uid_field, edges[0, 0].item()),
             dataset.id2token(dataset.iid_field, edges[0, 1].item()),
             dataset.id2token(dataset.iid_field, edges[0, 2].item())]
    assert first == [r.strip() for r in rows[0][:3]]  # the fourth column, agreement, is no id
    assert torch.equal(edges, load_augmented_edges(config, dataset))


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS)
def test_zero_feature_weight_reproduces_the_base_models_scores(data, name):
    base, _ = make(data, name, adapted=False)
    adapted, _ = make(data, name, seed=99, llmaug_feature_weight=0.0)  # MAE and edges still on
    missing, unexpected = adapted.load_state_dict(base.state_dict(), strict=False)
    assert not unexpected and missing and all(k.startswith("llmaug.") for k in missing)
    assert torch.allclose(scores(adapted, data), scores(base, data), atol=1e-6)

    incorporated, _ = make(data, name, seed=99)  # default w1 > 0 must change the scores
    incorporated.load_state_dict(base.state_dict(), strict=False)
    assert not torch.allclose(scores(incorporated, data), scores(base, data), atol=1e-3)


@pytest.mark.slow
def test_mae_decoder_learns_and_stored_features_do_not_change(data):
    directory, train, _, _ = data
    model, _ = make(data, "LightGCN", llmaug_mask_ratio=0.5, llmaug_mae_weight=1.0)
    dataset = train._dataset
    preload = {f: dataset.get_preload_weight(f).copy() for f in ("uid", "iid", "tid")}
    buffers = {k: v.clone() for k, v in model.llmaug.named_buffers()}
    decoder = {k: v.detach().clone() for k, v in model.llmaug.mae.named_parameters()}
    in_optimizer = {id(p) for p in model.parameters()}
    assert all(id(p) in in_optimizer for p in model.llmaug.mae.parameters())

    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)  # what RecBole's Trainer builds
    model.train()
    for _ in range(2):
        optimizer.zero_grad()
        model.calculate_loss(a_batch(data, "LightGCN")).backward()
        optimizer.step()

    for key, before in decoder.items():
        assert not torch.equal(before, dict(model.llmaug.mae.named_parameters())[key]), key
    for key, before in buffers.items():
        assert torch.equal(before, dict(model.llmaug.named_buffers())[key]), key
    for field, before in preload.items():
        assert np.array_equal(before, dataset.get_preload_weight(field)), field


@pytest.mark.slow
def test_mae_runs_in_training_and_never_in_eval(data):
    model, _ = make(data, "LightGCN", llmaug_mask_ratio=1.0, llmaug_feature_dropout=0.0,
                    llmaug_aug_edge_ratio=0.0, llmaug_weight_decay=0.0)
    batch = a_batch(data, "LightGCN")
    model.train()
    with_mae = model.calculate_loss(batch)
    fr_loss = model.llmaug.mae.loss(model.llmaug.encoder)
    assert fr_loss.item() > 0 and with_mae.item() > 0
    masked_everything = scores(model, data)
    unmasked = copy.deepcopy(model)
    unmasked.llmaug.mae = None
    unmasked.llmaug.forget()
    assert torch.equal(scores(unmasked, data), masked_everything)
    unmasked.train()
    assert with_mae.item() > unmasked.calculate_loss(batch).item()  # lambda * L_FR > 0 is in the loss


@pytest.mark.slow
def test_masked_features_reach_the_models_own_loss_in_training_only_when_asked(data):
    """llmaug_mask_in_forward: the model's own BPR (L_FR and LLM triplets aside) depends on the
    mask token during a training step; evaluation never masks; off, the model's loss never sees it."""
    batch = a_batch(data, "BPR")

    def own_loss_token_gradient(model):
        model.train()
        model.llmaug.begin_step()
        try:
            own = super(AdapterMixin, model).calculate_loss(batch)  # the base BPR's own loss, on h
        finally:
            model.llmaug.end_step()
        own.backward()
        return sum(float(g.token.grad.abs().sum()) if g.token.grad is not None else 0.0 for g in model.llmaug.mae.groups)

    knobs = dict(llmaug_mask_ratio=1.0, llmaug_feature_dropout=0.0, llmaug_aug_edge_ratio=0.0)
    masking, _ = make(data, "BPR", llmaug_mask_in_forward=True, **knobs)
    assert own_loss_token_gradient(masking) > 0
    not_masking, _ = make(data, "BPR", **knobs)
    assert own_loss_token_gradient(not_masking) == 0
    not_masking.load_state_dict(masking.state_dict())
    assert torch.equal(scores(masking, data), scores(not_masking, data))  # evaluation: unmasked


@pytest.mark.slow
def test_loading_a_state_dict_refreshes_the_cached_evaluation_representations(data):
    # BPR: no cache of its own (LightGCN's restore_user_e is RecBole's to refresh, which its
    # Trainer does with load_other_parameter), so only the adapter's cached terms are at stake.
    first, _ = make(data, "BPR", seed=1)
    second, _ = make(data, "BPR", seed=2)
    before = scores(first, data)  # fills first's evaluation cache
    first.load_state_dict(second.state_dict())
    assert torch.allclose(scores(first, data), scores(second, data))
    assert not torch.allclose(scores(first, data), before)


def base_and_adapted_losses(data, name, **on):
    """(adapted model, one batch, [base loss, adapted loss]): the adapted model, with every part off
    but ``on``, starts from the base model's weights; both draw the same random numbers."""
    base, _ = make(data, name, adapted=False)
    model, _ = make(data, name, **{**ALL_OFF, **on})
    model.load_state_dict(base.state_dict())
    batch = a_batch(data, name)
    losses = []
    for m in (base, model):
        np.random.seed(5)  # SGL draws its perturbed graphs in train()
        m.train()
        torch.manual_seed(5)
        losses.append(m.calculate_loss(batch))
    return model, batch, losses


@pytest.mark.slow
@pytest.mark.parametrize("name", ["BPR", "LightGCN", "SGL"])
def test_the_llm_triplets_join_the_models_own_loss_pruned(data, name):
    # Only edges and pruning on: the adapted loss is the base model's own loss on the batch plus
    # the pruned BPR of the sampled LLM triplets, scored by the model and computed here.
    model, batch, losses = base_and_adapted_losses(data, name, llmaug_aug_edge_ratio=0.5, llmaug_prune_ratio=0.5)
    with torch.no_grad():
        torch.manual_seed(5)  # the base losses draw nothing from torch: the adapter's draw comes first
        edges = sample_edges(model.llmaug.aug_edges, round(0.5 * len(batch)))
        users, items = model.forward(*model.llmaug_shape.forward_args(model))[:2] if name != "BPR" else (
            model.user_embedding.weight, model.item_embedding.weight)
        u, p, n = edges.unbind(1)
        triplet = bpr_per_triplet((users[u] * items[p]).sum(1), (users[u] * items[n]).sum(1))
        kept = triplet.sort().values[: len(triplet) - len(triplet) // 2].sum()  # llmaug's default: the smallest kept
        per_triplet = 1.0 if name == "SGL" else 1.0 / len(batch)  # SGL sums its own BPR over the batch
    assert len(edges) == round(0.5 * len(batch)) > 0
    assert torch.allclose(losses[1], losses[0] + kept * per_triplet, rtol=1e-5)
    assert not torch.allclose(losses[1], losses[0] + triplet.sum() * per_triplet, rtol=1e-5)


@pytest.mark.slow
def test_a_reduced_feature_rank_keeps_the_model_working(data):
    model, _ = make(data, "LightGCN", llmaug_feature_rank=32)
    encoder = model.llmaug.encoder
    assert all(encoder.input_width(n) == 32 and encoder.basis(n).shape == (384, 32) for n in encoder.names)
    model.train()
    loss = model.calculate_loss(a_batch(data, "LightGCN"))
    loss.backward()
    assert torch.isfinite(loss) and all(w.grad.abs().sum() > 0 for w in encoder.weights)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["BPR", "LightGCN"])
def test_eq7_over_the_batch_and_the_llm_triplets_replaces_the_models_bpr_mean(data, name):
    # Eq. 7 as published: the batch's own triplets and the LLM's ranked together, the largest
    # losses kept; their mean stands where the model's BPR mean stood, its other terms (LightGCN's
    # L2) stay. Computed here from the model's own scores.
    from recbole.model.loss import BPRLoss

    model, batch, losses = base_and_adapted_losses(data, name, llmaug_aug_edge_ratio=0.5, llmaug_prune_ratio=0.4,
                                                   llmaug_prune_drops="smallest_losses", llmaug_prune_over="all_triplets")
    with torch.no_grad():
        torch.manual_seed(5)
        edges = sample_edges(model.llmaug.aug_edges, round(0.5 * len(batch)))
        users, items = model.forward()[:2] if name != "BPR" else (model.user_embedding.weight, model.item_embedding.weight)
        own = torch.stack([batch[model.USER_ID], batch[model.ITEM_ID], batch[model.NEG_ITEM_ID]], dim=1)
        u, p, n = torch.cat([own, edges]).unbind(1)
        pos, neg = (users[u] * items[p]).sum(1), (users[u] * items[n]).sum(1)
        log_sigma = torch.nn.functional.logsigmoid(pos - neg)
        eq7 = -log_sigma.sort().values[: kept_count(len(log_sigma), 0.4)]
        own_bpr = BPRLoss()(pos[: len(own)], neg[: len(own)])
    assert len(edges) > 0
    assert torch.allclose(losses[1], losses[0] - own_bpr + eq7.mean(), rtol=1e-5)
    assert not torch.allclose(losses[1], losses[0], rtol=1e-5)


@pytest.mark.slow
def test_pruning_a_models_own_triplets_needs_its_loss_to_be_the_bpr_mean(data):
    with pytest.raises(ModelError) as refusal:
        make(data, "SGL", llmaug_prune_over="all_triplets")
    message = str(refusal.value)
    assert "\n" not in message and message.startswith("cannot prune SGL's own triplets") and "llm_triplets" in message
