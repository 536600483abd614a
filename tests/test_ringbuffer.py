"""The SPSC ring buffer: order, wrap-around, drops recorded as holes where they happened, and a real
producer thread."""

from __future__ import annotations

import threading
import time

import numpy as np

from monitor.ringbuffer import RingBuffer


def test_fifo_and_wraparound() -> None:
    rb = RingBuffer(10)
    seq = np.arange(1000, dtype=np.float32)
    out, pos = [], 0
    for step in (3, 7, 9, 1, 10, 4) * 20:  # odd sizes force every wrap-around case
        pos += rb.write(seq[pos : pos + min(step, rb.free())])  # only what fits: no holes
        out.append(rb.read(max_n=5))
        assert 0 <= rb.available() <= rb.capacity
    out.append(rb.read())
    got = np.concatenate(out)
    assert np.array_equal(got, seq[: got.shape[0]])
    assert got.shape[0] == pos  # everything accepted came out


def test_overflow_drops_and_counts() -> None:
    rb = RingBuffer(8)
    assert rb.write(np.ones(5, np.float32)) == 5
    assert rb.write(np.full(6, 2, np.float32)) == 3  # only 3 free: 3 dropped, never blocks
    assert rb.dropped == 3
    assert rb.available() == 8
    assert np.array_equal(rb.read(), [1, 1, 1, 1, 1, 2, 2, 2])
    assert rb.take_hole() == (3, 0)  # the 3 dropped samples were missing after these 8
    assert rb.take_hole() == (0, 0)
    assert rb.read().shape == (0,)
    rb.write(np.zeros(4, np.float32))
    rb.mark_hole(5)
    rb.write(np.zeros(9, np.float32))  # 4 fit, 5 dropped
    assert rb.clear() == 4 + 5 + 4 + 5  # discarded samples, holes included
    assert rb.available() == 0 and rb.take_hole() == (0, 0)


def test_hole_sits_where_samples_were_lost() -> None:
    """A full ring keeps the audio it has; the loss is recorded at its write position, and reading
    stops there even when newer samples are already waiting behind it."""
    rb = RingBuffer(8)
    rb.write(np.arange(8, dtype=np.float32))  # full of audio
    assert rb.write(np.full(4, -1, np.float32)) == 0  # lost: a hole at position 8
    assert np.array_equal(rb.read(3), [0, 1, 2])
    assert rb.take_hole() == (0, 0)  # not there yet
    assert rb.write(np.array([8, 9], np.float32)) == 2  # after the hole
    assert np.array_equal(rb.read(), [3, 4, 5, 6, 7])  # up to the hole, not across it
    assert rb.take_hole() == (4, 0)
    rb.mark_hole(100)  # a driver overrun before the next buffer
    rb.write(np.array([10], np.float32))
    assert np.array_equal(rb.read(), [8, 9])
    assert rb.take_hole() == (0, 100)
    assert np.array_equal(rb.read(), [10])
    assert rb.dropped == 4 and rb.lost == 100


def test_concurrent_producer_keeps_order() -> None:
    """A producer thread writing a ramp while the consumer reads: what arrives is in order, each
    hole is exactly as long as the gap in the ramp where it is reported, and received + dropped
    accounts for every sample sent."""
    rb = RingBuffer(4096)
    total = 400_000
    done = threading.Event()

    def produce() -> None:
        ramp = np.arange(total, dtype=np.float64).astype(np.float32)
        for i in range(0, total, 256):
            rb.write(ramp[i : i + 256])
            if i % 8192 == 0:
                time.sleep(0.0002)  # let the consumer in now and then: many holes, not one
        done.set()

    t = threading.Thread(target=produce)
    t.start()
    got, expect, holes = [], 0, 0
    while True:
        finished = done.is_set()
        x = rb.read()
        if x.shape[0]:
            assert x[0] == expect, "samples after a hole must start where the hole ends"
            # contiguous between holes: nothing reordered, duplicated or skipped silently
            assert np.array_equal(x, np.arange(expect, expect + x.shape[0], dtype=np.float32))
            got.append(x)
            expect += x.shape[0]
        full, upstream = rb.take_hole()
        assert upstream == 0
        if full:
            holes += 1
            expect += full
        elif finished and rb.available() == 0:
            break
    t.join()
    y = np.concatenate(got)
    assert y.shape[0] + rb.dropped == total
    assert expect == total and holes > 1
    print(f"{holes} holes, {rb.dropped} samples dropped")
