# Fits exit classifiers on a dump from ExitDump.java and simulates them against the exit oracle; see exit-headroom.sh.
# Usage: exit-headroom.py DUMP KINDS HIDDEN
import numpy as np, struct, sys
f = open(sys.argv[1], 'rb'); buf = f.read()
L, D = struct.unpack('>ii', buf[:8]); off = 8
docs = []
rec = np.dtype([('top1', '>i4'), ('tp', '>f4'), ('gap', '>f4'), ('h', '>f4', (D,))])
while off < len(buf):
    n, = struct.unpack('>i', buf[off:off+4]); off += 4
    a = np.frombuffer(buf, dtype=rec, count=n*L, offset=off).reshape(n, L); off += n*L*rec.itemsize
    docs.append(a)
print('docs', len(docs), 'tokens', sum(len(d) for d in docs))
split = int(len(docs)*0.75)
def cat(ds):
    a = np.concatenate(ds)
    return a['top1'].astype(np.int64), a['tp'].astype(np.float32), a['gap'].astype(np.float32), a['h'].astype(np.float32)
tr = cat(docs[:split]); te = cat(docs[split:])
def labels(top1): return top1[:, :-1] == top1[:, -1:]
# oracle
for lo in (0, 4, 8):
    s = labels(te[0]); s[:, :lo] = False
    first = np.where(s.any(1), s.argmax(1), L-1)
    print('oracle from', lo, 'layers saved %.3f' % ((L-1-first).mean()/L))
def feats(d, kind):
    top1, tp, gap, h = d
    n = len(top1)
    out = []
    for l in range(L-1):
        hl = h[:, l, :]
        hn = hl / np.sqrt((hl**2).mean(1, keepdims=True) + 1e-6)
        cols = []
        if 'p' in kind: cols += [tp[:, l:l+1], gap[:, l:l+1]]
        if 'h' in kind: cols += [hn]
        if 'd' in kind:  # change from previous block (saturation-like)
            prev = h[:, l-1, :] if l > 0 else hl
            dl = hl - prev
            cols += [np.sqrt((dl**2).sum(1, keepdims=True) / ((hl**2).sum(1, keepdims=True)+1e-6))]
        if 's' in kind:  # streak: top1 equal to previous block's
            cols += [(top1[:, l:l+1] == (top1[:, l-1:l] if l > 0 else -np.ones((n,1)))).astype(np.float32)]
        out.append(np.concatenate(cols, 1))
    return np.stack(out, 1)  # [n, L-1, F]
def train_lr(X, y, epochs=300, lr=0.1, l2=1e-4, hidden=0, seed=0):
    rng = np.random.default_rng(seed)
    mu = X.mean(0); sd = X.std(0) + 1e-6; Xs = (X - mu)/sd
    F = X.shape[1]
    if hidden:
        W1 = rng.normal(0, 1/np.sqrt(F), (F, hidden)).astype(np.float32); b1 = np.zeros(hidden, np.float32)
        w = rng.normal(0, 1/np.sqrt(hidden), hidden).astype(np.float32); b = np.float32(0)
    else:
        w = np.zeros(F, np.float32); b = np.float32(0)
    params = [w] if not hidden else [W1, b1, w]
    m = [np.zeros_like(p) for p in params]; v = [np.zeros_like(p) for p in params]; mb = 0.; vb = 0.
    pos = y.mean(); cw = np.where(y, 0.5/pos, 0.5/(1-pos)).astype(np.float32)
    N = len(y); bs = 4096
    t = 0
    for ep in range(epochs):
        idx = rng.permutation(N)[:bs*8]
        for s in range(0, len(idx), bs):
            j = idx[s:s+bs]; xb = Xs[j]; yb = y[j].astype(np.float32); c = cw[j]
            if hidden:
                z1 = xb @ W1 + b1; a1 = np.maximum(z1, 0); z = a1 @ w + b
            else:
                z = xb @ w + b
            p = 1/(1+np.exp(-z)); g = (p - yb) * c / len(j)
            if hidden:
                gw = a1.T @ g + l2*w; ga1 = np.outer(g, w) * (z1 > 0); gW1 = xb.T @ ga1 + l2*W1; gb1 = ga1.sum(0)
                grads = [gW1, gb1, gw]
            else:
                grads = [xb.T @ g + l2*w]
            gb = g.sum(); t += 1
            for i,(pp, gg) in enumerate(zip(params, grads)):
                m[i] = 0.9*m[i] + 0.1*gg; v[i] = 0.999*v[i] + 0.001*gg*gg
                pp -= lr*0.1 * (m[i]/(1-0.9**t)) / (np.sqrt(v[i]/(1-0.999**t)) + 1e-8)
            mb = 0.9*mb + 0.1*gb; vb = 0.999*vb + 0.001*gb*gb
            b = b - lr*0.1*(mb/(1-0.9**t))/(np.sqrt(vb/(1-0.999**t))+1e-8)
    def score(Xn):
        Z = (Xn - mu)/sd
        if hidden: return np.maximum(Z @ W1 + b1, 0) @ w + b
        return Z @ w + b
    return score
def simulate(S, lab, lo, thr):
    # S [n, L-1] scores; exit at first l>=lo with S>thr
    n = S.shape[0]
    acc = S > thr; acc[:, :lo] = False
    ex = acc.any(1); first = np.where(ex, acc.argmax(1), L-1)
    ok = np.where(ex, lab[np.arange(n), np.minimum(first, L-2)], True)
    return ok.mean(), (L-1-first).mean()/L, ex.mean()
def evaluate(kind, lo, hidden=0, target=0.99, perblock=False):
    Xtr = feats(tr, kind); Xte = feats(te, kind); ytr = labels(tr[0]); yte = labels(te[0])
    n, B, F = Xtr.shape
    # one model for all blocks with block one-hot appended
    oh = lambda n_: np.tile(np.eye(L-1, dtype=np.float32), (n_, 1, 1))
    Xa = np.concatenate([Xtr, oh(n)], 2)[:, lo:, :].reshape(-1, F + L-1)
    ya = ytr[:, lo:].reshape(-1)
    sc = train_lr(Xa, ya, epochs=60, hidden=hidden)
    Xb = np.concatenate([Xte, oh(len(Xte))], 2)
    S = np.full((len(Xte), L-1), -1e9, np.float32)
    S[:, lo:] = sc(Xb[:, lo:, :].reshape(-1, F + L-1)).reshape(len(Xte), -1)
    # threshold on half of held-out, report on the other half (tune on calibration text)
    half = len(Xte)//2
    best = None
    for thr in np.quantile(S[:half, lo:], np.linspace(0.3, 0.9995, 400)):
        a, sv, e = simulate(S[:half], yte[:half], lo, thr)
        if a >= target and (best is None or sv > best[1]): best = (thr, sv)
    if best is None: print(kind, lo, 'none'); return
    a, sv, e = simulate(S[half:], yte[half:], lo, best[0])
    a2, sv2, _ = simulate(S[:half], yte[:half], lo, best[0])
    print('%-6s from %2d hidden %3d: tune agree %.4f saved %.3f | test agree %.4f layers saved %.3f exited %.3f' % (kind, lo, hidden, a2, sv2, a, sv, e))
for kind in sys.argv[2].split(','):
    for lo in (6, 8, 10):
        evaluate(kind, lo, hidden=int(sys.argv[3]))
