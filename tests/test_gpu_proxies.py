"""CPU proxies for what happens on a GPU. No GPU is lent to this project, so each behaviour a GPU
changes is reproduced here in the way that fails on a CPU when it would fail there:

- Keras' ``jit_compile="auto"`` picks XLA whenever a GPU is visible: a train step with XLA forced
  on is lowered to HLO as TensorFlow hands it to XLA (an op without an XLA kernel fails there, the
  same way), one recipe's is compiled and run, and a faked device list shows what ``auto``
  resolves to.
- Mixed precision policies run on a CPU as they do on a GPU (float16 / bfloat16 compute).

Every CNN recipe is covered by one representative per distinct (layer types, augmentation
preset) combination: recipes that share both run the same ops. The transfer backbones are built
at a 48×48 resize instead of 224×224: the same layers and ops (the resize still upsamples), at a
twentieth of the arithmetic (float16 compute is emulated on a CPU: VGG16's fine-tune step took
380 s at 224), and each train step is on MICRO_BATCH images: the ops and dtypes are those of a
run's batch, the emulated arithmetic a quarter of 16 images' (r002-proyecto-9's float16 step:
32 s with 16, 9 s with 4). They, and every XLA compilation, are marked slow.
"""

from __future__ import annotations

import json
from collections import namedtuple

import numpy as np
import pytest

from harness.config import load_config
from harness.identity import is_transfer
from harness.run.data import prepare_split, synthetic_cifar10
from tests.conftest import REAL_CONFIG

# XLA on under bfloat16 compute, and float16 compute without XLA: both mixed policies, and XLA for
# every kind of recipe (float32 XLA is the same compilation with another dtype; it is covered for
# the augmentation layers by the faked-GPU test below).
SETTINGS = [("mixed_bfloat16", "on"), ("mixed_float16", "off")]


def layer_types(model) -> tuple[str, ...]:
    return tuple(sorted({type(layer).__name__ for layer in model._flatten_layers(include_self=False)}))


def cnn_classes() -> dict[str, list[str]]:
    """Representative recipe -> every CNN recipe it stands for (same layer types, same
    augmentation values); the representative is the one with the fewest parameters."""
    import architectures

    config = load_config(REAL_CONFIG)
    classes: dict[tuple, list[tuple[int, str]]] = {}
    for recipe in config.recipes.values():
        if is_transfer(recipe):
            continue
        model = architectures.build(recipe.architecture, **dict(recipe.architecture_options))
        augmentation = json.dumps(config.augmentation(recipe.augmentation), sort_keys=True)
        classes.setdefault((augmentation, layer_types(model)), []).append((model.count_params(), recipe.name))
    return {min(members)[1]: [name for _, name in members] for members in classes.values()}


def transfer_representatives() -> list[str]:
    """One transfer recipe per (architecture, augmentation): the rest differ only in training."""
    config = load_config(REAL_CONFIG)
    chosen: dict[tuple, str] = {}
    for recipe in config.recipes.values():
        if is_transfer(recipe):
            chosen.setdefault((recipe.architecture, recipe.augmentation), recipe.name)
    return sorted(chosen.values())


# Kept as a list so that collecting the tests builds no model; the first test checks it is
# still exactly one representative per class of the recipes as they are now.
CNN_REPRESENTATIVES = [
    "r000-proyecto-1",
    "r000-proyecto-2",
    "r000-proyecto-9",
    "r001-proyecto-11",
    "r002-proyecto-9",
    "r003-arq2",
    "r003-arq2-leaky",
    "r003-arq3-aug-mejor",
    "r003-arq3-aug-peor",
    "r004-step10",
    "r004-step3",
    "r004-step4",
]


@pytest.fixture(scope="module")
def split():
    data = synthetic_cifar10(train=120, test=40, seed=5)
    return prepare_split(data, validation_size=40, split_seed=0, train_size=64)


@pytest.fixture(scope="module", autouse=True)
def fit_standardization_once():
    """ZCA whitening (r001-proyecto-11) fits a 3072×3072 SVD on the training images: once per
    module here, not once per setting."""
    import functools

    import harness.run.augment

    original = harness.run.augment.fit_standardization
    cache: dict = {}

    @functools.wraps(original)
    def cached(preset, x_train):
        key = (json.dumps(preset, sort_keys=True), id(x_train))
        if key not in cache:
            cache[key] = original(preset, x_train)
        return cache[key]

    harness.run.augment.fit_standardization = cached
    yield
    harness.run.augment.fit_standardization = original


@pytest.fixture
def policy():
    """Sets a global dtype policy for one test and restores float32 after it."""
    import keras

    yield keras.mixed_precision.set_global_policy
    keras.mixed_precision.set_global_policy("float32")


# The fine-tunes' resize in these tests: an upsample as at 224, the smallest size VGG16's head
# still reads as one 512-wide map (48 // 32 = 1).
TEST_RESIZE = 48
MICRO_BATCH = 4  # images per proxy train step (BatchNormalization still sees a batch, not one image)


def micro_step(name: str, precision: str, jit: str, split, policy, monkeypatch) -> None:
    """One train step of the exact model a run of ``name`` trains (``harness.run.train.assemble``),
    compiled as a run compiles it, under ``precision`` with XLA ``jit`` (transfer backbones at
    ``TEST_RESIZE``)."""
    import keras

    import architectures.transfer
    from harness.run.train import assemble, make_optimizer

    config = load_config(REAL_CONFIG)
    recipe = config.recipe(name)
    monkeypatch.setattr(architectures.transfer, "RESIZED", TEST_RESIZE)
    policy(precision)
    built = assemble(
        recipe,
        seed=0,
        augmentation=config.augmentation(recipe.augmentation),
        x_train=split.x_train,
        xla=jit == "on",
        build_kwargs={"weights": None} if is_transfer(recipe) else None,
    )
    x = split.x_train[:MICRO_BATCH]
    if built.backbone is not None:
        x = built.backbone.predict(x, verbose=0)
    y = split.y_train[:MICRO_BATCH]
    if recipe.training.loss == "categorical_crossentropy":
        y = keras.utils.to_categorical(y, 10)
    built.model.compile(optimizer=make_optimizer(recipe), loss=recipe.training.loss, jit_compile=jit == "on")
    assert built.model.jit_compile is (jit == "on")
    assert built.model.outputs[0].dtype == "float32"
    if jit == "on" and name != EXECUTED_UNDER_XLA:
        hlo = lowered_train_step(built.model, x, y)
        assert HLO_TYPES[precision] in hlo, f"no {HLO_TYPES[precision]} compute in the lowered step"
        return
    loss = float(np.asarray(built.model.train_on_batch(x, y)).reshape(-1)[0])
    assert np.isfinite(loss), loss


# Under XLA, one recipe's step is compiled and run (its augmentation's gather warp, the op most
# likely to differ compiled); every other is lowered to HLO, where TensorFlow hands it to XLA: an
# op with no XLA kernel, or dtypes that do not meet, fail there as in a GPU's compile. XLA's CPU
# passes and code generation, which come after, say nothing of the GPU's, and took most of the
# time (r004-step3 under mixed_bfloat16: 4.2 s CPU compiled and run, 0.8 s lowered).
EXECUTED_UNDER_XLA = "r004-step10"
HLO_TYPES = {"mixed_bfloat16": "bf16", "mixed_float16": "f16", "float32": "f32"}


def lowered_train_step(model, x, y) -> str:
    """The train step a jit-compiled fit runs (Keras wraps ``train_step`` in a
    ``tf.function(jit_compile=True)``), as the HLO TensorFlow's tf2xla bridge produces. First
    what ``train_on_batch`` does before its first step: build the optimizer's variables."""
    import tensorflow as tf

    model._symbolic_build(data_batch=(x, y))
    step = tf.function(model.train_step, jit_compile=True)
    return step.experimental_get_compiler_ir((tf.constant(x), tf.constant(y)))(stage="hlo")


def test_every_cnn_recipe_has_a_representative():
    classes = cnn_classes()
    assert sorted(classes) == CNN_REPRESENTATIVES
    config = load_config(REAL_CONFIG)
    covered = sorted(name for members in classes.values() for name in members)
    assert covered == sorted(r.name for r in config.recipes.values() if not is_transfer(r))


@pytest.mark.slow
@pytest.mark.parametrize(("precision", "jit"), SETTINGS)
@pytest.mark.parametrize("name", CNN_REPRESENTATIVES)
def test_cnn_recipes_train_under_xla_and_mixed_precision(name, precision, jit, split, policy, monkeypatch):
    """One training step of every kind of CNN recipe with XLA forced on (what `auto` picks on a
    GPU) and under both mixed policies (their float16/bfloat16 compute)."""
    micro_step(name, precision, jit, split, policy, monkeypatch)


@pytest.mark.slow
@pytest.mark.parametrize(("precision", "jit"), SETTINGS)
@pytest.mark.parametrize("name", transfer_representatives())
def test_transfer_recipes_train_under_xla_and_mixed_precision(name, precision, jit, split, policy, monkeypatch):
    """The same for one transfer recipe per (backbone, augmentation), built at ``TEST_RESIZE``."""
    micro_step(name, precision, jit, split, policy, monkeypatch)


def test_the_lowered_step_fails_on_an_op_without_an_xla_kernel():
    """What the lowered proxy catches: a train step with an op XLA cannot compile (here a
    Python function) fails at lowering, naming the op, as a GPU's jit-compiled fit would."""
    import keras
    import tensorflow as tf

    class PythonOp(keras.layers.Layer):
        def call(self, x):
            y = tf.numpy_function(lambda a: a, [x], tf.float32, stateful=False)
            y.set_shape(x.shape)
            return y

    inputs = keras.Input((8,))
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(keras.layers.Dense(4)(PythonOp()(inputs))))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", jit_compile=True)
    with pytest.raises(ValueError, match="PyFuncStateless"):
        lowered_train_step(model, np.zeros((4, 8), "float32"), np.zeros((4,), "int32"))


def test_mixed_precision_keeps_the_softmax_in_float32(policy):
    """Under a mixed policy the output is float32 (the loss then reads float32 logits), whatever
    the builder wrote; under float32 the model is untouched."""
    import architectures
    from harness.run.train import float32_output

    plain = architectures.build("r004_step1")
    assert float32_output(plain) is plain
    policy("mixed_float16")
    model = float32_output(architectures.build("r004_step1"))
    assert model.outputs[0].dtype == "float32" and model.layers[-1].name == "softmax_float32"
    assert model.count_params() == 92_074
    probabilities = np.asarray(model(np.zeros((2, 32, 32, 3), "float32")))
    assert probabilities.dtype == np.float32 and np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)


FakeDevice = namedtuple("FakeDevice", ["name", "device_type"])


@pytest.mark.parametrize("with_gpu", [True, False])
def test_auto_resolves_as_keras_does_with_a_faked_gpu(monkeypatch, with_gpu):
    """Keras' own `auto` (Trainer._resolve_auto_jit_compile) on the model the harness builds for
    an augmented recipe, with a visible GPU faked in TensorFlow's device list: XLA, and the
    augmentation built for XLA supports it; the kernel-built one reports it cannot, so Keras
    would never compile it with XLA."""
    import keras
    import tensorflow as tf

    from harness.run.augment import build_augmentation
    from harness.run.devices import resolve_jit_compile

    devices = [FakeDevice("/physical_device:CPU:0", "CPU")]
    if with_gpu:
        devices.append(FakeDevice("/physical_device:GPU:0", "GPU"))
    monkeypatch.setattr(
        tf.config, "list_physical_devices", lambda kind=None: [d for d in devices if kind in (None, d.device_type)]
    )
    config = load_config(REAL_CONFIG)
    preset = config.augmentation("r004_assumed")

    def model_with(xla: bool):
        layers = build_augmentation(preset, seed=0, xla=xla)
        model = keras.Sequential([keras.Input((32, 32, 3)), *layers, keras.layers.Flatten(), keras.layers.Dense(10)])
        model.compile(optimizer="adam", loss="mse", jit_compile="auto")
        return model

    chosen = model_with(xla=True)
    assert chosen.jit_compile is with_gpu
    assert model_with(xla=False).jit_compile is False
    assert resolve_jit_compile("auto", backend="tensorflow", accelerator=with_gpu) is with_gpu
    if with_gpu:  # what a GPU would run: the float32 step, augmentation included, compiled by XLA
        images = np.random.default_rng(0).random((8, 32, 32, 3)).astype("float32")
        assert np.isfinite(chosen.train_on_batch(images, np.zeros((8, 10), "float32")))


def test_jit_resolution_rules():
    from harness.run.devices import resolve_jit_compile

    assert resolve_jit_compile("on", backend="tensorflow", accelerator=False) is True
    assert resolve_jit_compile("off", backend="jax", accelerator=True) is False
    assert resolve_jit_compile("auto", backend="torch", accelerator=True) is False
    assert resolve_jit_compile("auto", backend="jax", accelerator=False) is True
    assert resolve_jit_compile("auto", backend="tensorflow", accelerator=True, deterministic=True) is False


@pytest.mark.parametrize("fill_mode", ["nearest", "constant", "reflect", "wrap"])
def test_gather_warp_equals_the_tensorflow_kernel(fill_mode):
    """The XLA-compatible warp gives the kernel's numbers (rotation, shift, zoom, projective)."""
    from keras import ops

    from harness.run.augment import affine_transform_by_gather

    rng = np.random.default_rng(0)
    images = rng.random((6, 32, 32, 3)).astype("float32")
    angle, zoom = rng.uniform(-0.8, 0.8, 6), rng.uniform(0.6, 1.4, 6)
    cos, sin = np.cos(angle) * zoom, np.sin(angle) * zoom
    shift_x, shift_y = rng.uniform(-12, 12, 6) + 16, rng.uniform(-12, 12, 6) + 16
    projective = rng.uniform(-0.002, 0.002, 6)
    transform = np.stack([cos, -sin, shift_x, sin, cos, shift_y, projective, np.zeros(6)], 1).astype("float32")
    kernel = ops.image.affine_transform(
        images, transform, interpolation="bilinear", fill_mode=fill_mode, fill_value=0.3
    )
    gathered = affine_transform_by_gather(images, transform, fill_mode=fill_mode, fill_value=0.3)
    np.testing.assert_allclose(ops.convert_to_numpy(gathered), ops.convert_to_numpy(kernel), atol=1e-5)


# Run in a fresh process per backend (the Keras backend is fixed per process): a small conv +
# dense model's compiled forward program under TF32 off and on (the precision its convolutions
# and matmuls carry, what a GPU obeys), the backend's switches as set_tf32 leaves them, and
# whether float32 with TF32 off trains to the same weights as the backend's default on this CPU.
TF32_PROBE = """
import json, re, sys
import numpy as np
import keras
from harness.run.devices import set_tf32, tf32_setting

backend = keras.backend.backend()
x = np.random.default_rng(0).random((4, 8, 8, 3)).astype("float32")
y = np.arange(4) % 2

def model():
    keras.utils.set_random_seed(0)
    m = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3), keras.layers.Flatten(),
                          keras.layers.Dense(2, activation="softmax")])
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return m

def precisions(m):
    if backend == "tensorflow":
        import tensorflow as tf
        text = tf.function(lambda a: m(a), jit_compile=True).experimental_get_compiler_ir(x)(stage="hlo")
        ops, pattern = (" convolution(", " dot("), r"operand_precision=\\{(\\w+),"
    elif backend == "jax":
        import jax
        variables = [v.value for v in m.trainable_variables], [v.value for v in m.non_trainable_variables]
        text = jax.jit(lambda t, n, a: m.stateless_call(t, n, a)[0]).lower(*variables, x).as_text()
        ops, pattern = ("stablehlo.convolution", "stablehlo.dot_general"), r"(?:precision = \\[|#stablehlo<precision )(\\w+)"
    else:
        return []
    found = [re.search(pattern, line) for line in text.splitlines() if any(op in line for op in ops)]
    return [match.group(1) if match else "(none)" for match in found]  # one per convolution / matmul

def trained(m):
    for _ in range(3):
        m.train_on_batch(x, y)
    return [w.tolist() for w in m.get_weights()]

default_weights = trained(model())
result = {"backend": backend}
for enabled in (False, True):
    restore = set_tf32(backend, enabled)
    m = model()
    result[str(enabled)] = {"setting": tf32_setting(backend), "precisions": precisions(m)}
    if not enabled:
        result["float32_trains_as_default"] = trained(m) == default_weights
    restore()
result["restored"] = tf32_setting(backend)
print(json.dumps(result))
"""

TF32_EXPECTED = {
    "tensorflow": (
        "tensor_float_32_execution=False",
        "tensor_float_32_execution=True",
        ["highest", "highest"],
        ["(none)", "(none)"],
    ),
    "jax": (
        "jax_default_matmul_precision=highest",
        "jax_default_matmul_precision=tensorfloat32",
        ["HIGHEST", "HIGHEST"],
        ["HIGH", "HIGH"],
    ),
    "torch": (
        "matmul.allow_tf32=False, cudnn.allow_tf32=False",
        "matmul.allow_tf32=True, cudnn.allow_tf32=True",
        [],
        [],
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["tensorflow", "jax", "torch"])
def test_float32_means_float32_in_what_the_gpu_would_compile(backend):
    """TF32 off unless asked: the compiled convolution and matmul carry float32 ("highest")
    precision, TF32's ("HIGH" in JAX; TensorFlow's default) only under set_tf32(on); the
    switches read back as set and are put back after; on a CPU float32 with TF32 off trains to
    exactly the weights of the backend's default (CPU stores keep their runs)."""
    import importlib.util
    import os
    import subprocess
    import sys

    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"Keras backend {backend!r} is not installed")
    completed = subprocess.run(
        [sys.executable, "-c", TF32_PROBE],
        env={**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    off, on, off_precisions, on_precisions = TF32_EXPECTED[backend]
    assert result["backend"] == backend
    assert result["False"] == {"setting": off, "precisions": off_precisions}
    assert result["True"] == {"setting": on, "precisions": on_precisions}
    assert result["float32_trains_as_default"] is True
    assert result["restored"] != off or backend == "torch"  # set_tf32's restore puts the default back


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["tensorflow", "jax", "torch"])
def test_the_tf32_choice_reaches_every_worker_and_is_its_own_identity(
    backend, tmp_path, synthetic_npz, test_config, shared_sweep
):
    """Each worker logs its backend's TF32 switches as it set them: off for float32 (the default),
    on for --precision tf32 (two concurrent workers: every worker gets it, not only the first);
    the tf32 runs are another identity (config hash), so a float32 sweep never counts them. The
    float32 runs are the session's shared sweeps, copied here (tests/conftest.py SHARED_SWEEPS):
    under TensorFlow two seeds at once, under JAX one; under another backend one is trained here."""
    import importlib.util
    import os
    import subprocess
    import sys

    from mlflow.tracking import MlflowClient

    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"Keras backend {backend!r} is not installed")
    sweeps, float32_seeds = [("tf32", "2")], {"tensorflow": ["0", "1"]}.get(backend, ["0"])
    if backend in ("tensorflow", "jax"):
        shared = shared_sweep({"tensorflow": "smoke", "jax": "jax"}[backend])
        assert shared.exit_code == 0, shared.output
    else:
        sweeps = [("float32", "1"), *sweeps]
    command = [sys.executable, "-m", "harness.cli", "--config", str(test_config), "--data", str(synthetic_npz)]
    for precision, seeds in sweeps:
        sweep = subprocess.run(
            [*command, "run", "tiny-a", "--profile", "smoke", "--seeds", seeds, "--jobs", seeds]
            + ["--precision", precision],
            cwd=tmp_path,
            env={**os.environ, "KERAS_BACKEND": backend},
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert sweep.returncode == 0, sweep.stdout + sweep.stderr
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("cifar10-bench")
    children = [
        r
        for r in client.search_runs([experiment.experiment_id])
        if r.data.tags["bench.kind"] == "child" and r.data.tags["bench.recipe"] == "tiny-a"
    ]
    off, on, _, _ = TF32_EXPECTED[backend]
    seen = sorted((r.data.params["precision"], r.data.tags["bench.seed"], r.data.params["tf32"]) for r in children)
    assert seen == [("float32", seed, off) for seed in float32_seeds] + [("tf32", "0", on), ("tf32", "1", on)]
    assert all(r.info.status == "FINISHED" and r.data.params["keras_backend"] == backend for r in children)
    hashes = {r.data.params["precision"]: r.data.tags["bench.config_hash"] for r in children}
    assert hashes["float32"] != hashes["tf32"]
