# Tuned-lens exits on stories-deep16 (docs/PERFORMANCE.md, "Exit headroom"): fits, per block, an affine map from the
# block's output to the last block's output (least squares on the first 300 calibration documents), reads the exit
# probe through it (final norm + LM head on the mapped state), and reports the exit oracle and exit-headroom.py's
# classifiers (AdaInfer's features p, and p + the hidden state) at 99 % agreement, beside the plain probe ("logit").
import numpy as np, struct, sys
# Usage: exit-lens.py DUMP HEAD MODES [HIDDEN]   (MODES e.g. logit,affine)
# Reuses exit-headroom.py's loading, classifiers and simulation (everything before its main loop).
DUMP, HEAD = sys.argv[1], sys.argv[2]
ARGS = sys.argv[3:]
exec(open(__file__.replace('exit-lens.py', 'exit-headroom.py')).read().split('for kind in sys.argv[2]')[0].replace("sys.argv[1]", "DUMP"))
hb = open(HEAD,'rb').read()
V, Dh = struct.unpack('>ii', hb[:8])
g = np.frombuffer(hb, '>f4', Dh, 8).astype(np.float32)
Wc = np.frombuffer(hb, '>f4', V*Dh, 8+4*Dh).reshape(V, Dh).astype(np.float32)
eps = np.frombuffer(hb, '>f4', 1, 8+4*Dh+4*V*Dh)[0]
def logits(h):
    hn = h / np.sqrt((h**2).mean(-1, keepdims=True) + eps)
    return (hn * g) @ Wc.T
def stats(z):
    s = np.sort(z, -1); top = z.argmax(-1)
    zz = z - z.max(-1, keepdims=True); p = np.exp(zz); p /= p.sum(-1, keepdims=True)
    ps = np.sort(p, -1)
    return top, ps[:, -1], ps[:, -1] - ps[:, -2]
# sanity: numpy logit lens equals the dump's
t, _, _ = stats(logits(tr[3][:2000, L-1]))
print('head check', (t == tr[0][:2000, L-1]).mean())
import itertools
def lens_fit(h, l, mode):
    X = h[:, l]; Y = h[:, L-1]
    if mode == 'affine':
        Xa = np.concatenate([X, np.ones((len(X),1),np.float32)], 1)
        A, *_ = np.linalg.lstsq(Xa, Y, rcond=None); return lambda Z: np.concatenate([Z, np.ones((len(Z),1),np.float32)],1) @ A
    if mode == 'resid':  # Y - X regressed on X (same as affine, kept for ridge)
        Xa = np.concatenate([X, np.ones((len(X),1),np.float32)], 1)
        lam = 1.0
        A = np.linalg.solve(Xa.T@Xa + lam*np.eye(Dh+1), Xa.T@(Y-X)); return lambda Z: Z + np.concatenate([Z, np.ones((len(Z),1),np.float32)],1) @ A
def apply(d, mode):
    top1, tp, gap, h = d
    if mode == 'logit': return d
    t2 = top1.copy(); p2 = tp.copy(); g2 = gap.copy()
    for l in range(L-1):
        f = LENS[l]
        t2[:, l], p2[:, l], g2[:, l] = stats(logits(f(h[:, l])))
    return t2, p2, g2, h
for mode in ARGS[0].split(','):
    if mode != 'logit':
        LENS = [lens_fit(tr[3], l, mode) for l in range(L-1)]
    a_tr = apply(tr, mode); a_te = apply(te, mode)
    lab = labels(a_te[0])
    print(mode, 'per-layer agreement with final (test):', ' '.join('%.2f' % x for x in lab.mean(0)))
    for lo in (0, 4, 6, 8):
        s = lab.copy(); s[:, :lo] = False
        first = np.where(s.any(1), s.argmax(1), L-1)
        # strict oracle: exit only if all later probes agree too (settled)
        st = np.flip(np.cumprod(np.flip(lab, 1), 1), 1).astype(bool); st[:, :lo] = False
        fs = np.where(st.any(1), st.argmax(1), L-1)
        print(mode, 'oracle from', lo, 'layers saved %.3f settled %.3f' % ((L-1-first).mean()/L, (L-1-fs).mean()/L))
    tr, te = a_tr, a_te
    for lo in (6, 8):
        evaluate('p', lo, hidden=0)
        evaluate('ph', lo, hidden=int(ARGS[1]) if len(ARGS) > 1 else 0)
    tr, te = cat(docs[:split]), cat(docs[split:])
