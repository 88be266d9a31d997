"""The output chain on the generator's device (device_output.py): the same frames as the CPU chain,
checked here on the CPU; on a CUDA machine the engine takes it by itself."""
import cv2
import numpy as np
import pytest
import torch

from installation.device_output import DeviceOutput
from installation.output import Output, OutputSpec, img_to_uint8


def _images(n=3, channels=3, size=64, seed=0):
    torch.manual_seed(seed)
    img = torch.rand(n, channels, size, size) * 2 - 1
    return torch.nn.functional.avg_pool2d(img, 3, 1, 1)        # some structure, not only pixel noise


@pytest.mark.parametrize("spec", [
    OutputSpec(640, 360),
    OutputSpec(640, 360, grain=0.3, vignette=0.5),
    OutputSpec(360, 640, scale="fill", grain=0.2),
    OutputSpec(1920, 1080, upscale="bilinear", grain=0.04),
    OutputSpec(200, 200, upscale="nearest"),
    OutputSpec(162, 96, upscale="lanczos", grain=0.3),
    OutputSpec(50, 40, grain=0.3),                  # smaller than the generator's image: OpenCV's INTER_AREA
    OutputSpec(33, 17, scale="fill"),
])
@pytest.mark.parametrize("channels", [1, 3])
def test_the_device_chain_draws_the_cpu_chains_frames(spec, channels):
    """Vignette, upscaling or shrinking, bars or crop and the moving grain window: each pixel within
    one level of OpenCV's (torch's bicubic is OpenCV's in float; lanczos is drawn as bicubic, which
    looks the same at these enlargements), and the bars exactly black."""
    img = _images(channels=channels)
    cpu_chain = Output(spec)
    small = img_to_uint8(img)
    cpu = np.stack([cpu_chain(small[k], 5 * k) for k in range(len(img))])
    dev = np.stack(DeviceOutput(cpu_chain, "cpu")(img, [5 * k for k in range(len(img))]))
    assert dev.shape == cpu.shape and dev.dtype == np.uint8
    diff = np.abs(dev.astype(int) - cpu)
    limit, mean = (12, 1.0) if spec.upscale == "lanczos" else (1, 0.2)
    assert diff.max() <= limit and diff.mean() < mean, (diff.max(), diff.mean())
    sw, sh, x0, y0 = cpu_chain.placement(64, 64)
    if x0 > 0 or y0 > 0:
        outside = np.ones(dev.shape[1:3], bool)
        outside[max(0, y0):y0 + sh, max(0, x0):x0 + sw] = False
        assert (dev[:, outside] == 0).all()
    if spec.grain:
        assert not np.array_equal(dev[0], DeviceOutput(Output(OutputSpec(spec.width, spec.height, spec.scale,
                                                                          spec.upscale, spec.vignette)), "cpu")(
            img[:1], [0])[0])


def test_the_device_chains_yuv_frame_is_its_screen_frame():
    """For an encoder: I420 made on the device decodes to its own RGB frame as closely as OpenCV's
    conversion of that frame does, with black bars in every plane."""
    from installation.output import i420_planes
    img = _images(n=2)
    for spec in (OutputSpec(1280, 720, grain=0.3, vignette=0.4), OutputSpec(720, 1280), OutputSpec(1280, 720,
                                                                                                   scale="fill")):
        chain = DeviceOutput(Output(spec), "cpu")
        rgb, yuv = chain(img, [3, 4]), chain(img, [3, 4], "i420")
        for screen, buf in zip(rgb, yuv):
            assert buf.shape == (spec.height * 3 // 2, spec.width)
            decoded = cv2.cvtColor(buf, cv2.COLOR_YUV2RGB_I420)
            via_cv = cv2.cvtColor(cv2.cvtColor(screen, cv2.COLOR_RGB2YUV_I420), cv2.COLOR_YUV2RGB_I420)
            err, err_cv = np.abs(decoded.astype(int) - screen), np.abs(via_cv.astype(int) - screen)
            assert err.mean() <= err_cv.mean() + 0.1 and np.percentile(err, 99.9) <= np.percentile(err_cv, 99.9) + 2
            if spec.scale == "fit":
                sw, sh, x0, y0 = chain.output.placement(64, 64)
                for plane, black, k in zip(i420_planes(buf, spec.width, spec.height), (16, 128, 128), (1, 2, 2)):
                    inside = np.zeros(plane.shape, bool)
                    inside[y0 // k:(y0 + sh) // k, x0 // k:(x0 + sw) // k] = True
                    assert (plane[~inside] == black).all()


def test_the_device_chain_refuses_odd_yuv_frames_and_draws_big_batches_in_chunks(monkeypatch):
    import installation.device_output as device_output
    with pytest.raises(ValueError, match="even width and height"):
        DeviceOutput(Output(OutputSpec(97, 64)), "cpu")(_images(n=1), [0], "i420")
    chain = DeviceOutput(Output(OutputSpec(320, 180, grain=0.3)), "cpu")
    img, at = _images(n=5), [3, 9, 4, 1, 7]
    whole = chain(img, at)
    monkeypatch.setattr(device_output, "CHUNK_BYTES", 320 * 180 * 3 * 4 * 3 * 2)      # two frames a chunk
    assert all(np.array_equal(a, b) for a, b in zip(whole, chain(img, at)))


def test_an_engine_with_the_device_chain_renders_the_same_frames(tiny_checkpoint):
    """The engine's frames — alone, in a batch, as RGB or I420 — are the same whichever chain draws them."""
    from installation.engine import Engine
    from installation.render import RenderJob, frame_states
    from installation.settings import settings_from_dict
    s = settings_from_dict({}, [f"model.path={tiny_checkpoint}", "model.device=cpu", "course.duration=8h",
                                "display.grain=0.2", "display.vignette=0.3"])
    engine = Engine.from_settings(s, 320, 180)
    assert engine.device_output is None            # a CPU engine keeps OpenCV's chain, the faster there
    states = [st for _, st in frame_states(s, RenderJob(1.0, 8, 320, 180, start=0.5, end=0.5))]
    cpu = engine.render_batch(states), engine.render(states[0], sync=True), engine.render_batch(states, "i420")
    engine.device_output = DeviceOutput(engine.output, "cpu")
    dev = engine.render_batch(states), engine.render(states[0], sync=True), engine.render_batch(states, "i420")
    for a, b in zip([*cpu[0], cpu[1]], [*dev[0], dev[1]]):
        assert np.abs(a.astype(int) - b).max() <= 2
    for a, b in zip(cpu[2], dev[2]):                # I420: each made its own way, both close to the screen
        da, db = (cv2.cvtColor(x, cv2.COLOR_YUV2RGB_I420).astype(int) for x in (a, b))
        assert np.abs(da - db).mean() < 1.0
    engine.resize(160, 90)
    assert engine.device_output.output is engine.output and engine.render(states[0]).shape == (90, 160, 3)
    engine.close()


@pytest.mark.gpu
def test_on_a_gpu_the_engine_draws_there_and_matches_the_cpu(tiny_checkpoint):
    """A CUDA engine runs the whole chain on the GPU (one copy per frame batch) and shows the CPU
    engine's frames, to within the GPU's float rounding."""
    from installation.engine import Engine
    from installation.render import RenderJob, frame_states
    from installation.settings import settings_from_dict
    frames = {}
    for device in ("cpu", "cuda"):
        s = settings_from_dict({}, [f"model.path={tiny_checkpoint}", f"model.device={device}", "course.duration=8h",
                                    "display.grain=0.2"])
        engine = Engine.from_settings(s, 1920, 1080)
        assert (engine.device_output is not None) == (device == "cuda")
        states = [st for _, st in frame_states(s, RenderJob(1.0, 8, 1920, 1080, start=0.3, end=0.3))]
        frames[device] = engine.render_batch(states)
        again = engine.render_batch(states)             # a film renders the same frames twice
        assert all(np.array_equal(a, b) for a, b in zip(frames[device], again))
        engine.close()
    for a, b in zip(frames["cpu"], frames["cuda"]):
        assert np.abs(a.astype(int) - b).mean() < 1.0
