"""Does the Gibbs scale move (``GibbsConfig.scale_move``) keep the posterior, and does it mix the scale faster?

On a 40 x 60 synthetic problem (dimension 2, 60% of pairs observed), 4 chains x 1,000 kept draws (thin 8) with and
without the move: pair probabilities (posterior mean and sd), the LLM and question population covariances (trace
per chain, mean log-determinant) and the lag-1 autocorrelation of the log trace of the LLM population covariance.
If the move is right, everything but the autocorrelation agrees. Prints its findings (about 6 minutes on 2 cores).

Usage:
    python experiments/gibbs_scale_move_check.py
"""
import numpy as np, time
from bayes_simrmf.inference.gibbs import run_gibbs, GibbsConfig, LLM_POPULATION_COV, ITEM_POPULATION_COV
from bayes_simrmf.model.predictor import pair_logits, sigmoid
rng = np.random.default_rng(0)
nl, ni, d = 40, 60, 2
U = rng.normal(0, 1, (nl, d)); V = rng.normal(0, 1, (ni, d))
ll, ii = np.meshgrid(np.arange(nl), np.arange(ni), indexing='ij'); ll, ii = ll.ravel(), ii.ravel()
keep = rng.random(len(ll)) < 0.6; ll, ii = ll[keep], ii[keep]
p = 1/(1+np.exp(-((U[ll]*V[ii]).sum(1) + rng.normal(0, .5, ni)[ii] - 0.3)))
y = (rng.random(len(p)) < p).astype(np.int32)
res = {}
for move in (False, True):
    t = time.time()
    r = run_gibbs(nl, ni, ll.astype(np.int32), ii.astype(np.int32), y, dim=d, biases=True,
                  config=GibbsConfig(chains=4, warmup=1000, samples=8000, thin=8, progress=False, scale_move=move), seed=1)
    dr = r.draws
    params = {k: dr[k].reshape(-1, *dr[k].shape[2:]) for k in ('llm_factors','item_factors','llm_bias','item_bias','intercept') if k in dr}
    q = np.arange(0, nl*ni, 37); pl, pi = q // ni, q % ni
    prob = sigmoid(pair_logits(params, pl, pi))
    lc = np.linalg.eigvalsh(dr[LLM_POPULATION_COV].reshape(-1, d+1, d+1).astype(float))
    ic = np.linalg.eigvalsh(dr[ITEM_POPULATION_COV].reshape(-1, d+1, d+1).astype(float))
    chains = dr[LLM_POPULATION_COV].shape[0]
    tr = np.trace(dr[LLM_POPULATION_COV].astype(float), axis1=-2, axis2=-1)
    res[move] = dict(mean=prob.mean(0), sd=prob.std(0), n=prob.shape[0])
    print('move', move, 'time %.1f' % (time.time()-t), 'llm cov trace per chain', tr.mean(1).round(2), 'sd over draws', tr.std(1).round(2),
          'log det llm cov mean %.3f item %.3f' % (np.log(lc).sum(1).mean(), np.log(ic).sum(1).mean()), 'log llm-trace autocorr lag1 %.3f' % np.mean([np.corrcoef(np.log(tr[c,:-1]), np.log(tr[c,1:]))[0,1] for c in range(chains)]))
a, b = res[False], res[True]
z = (a['mean'] - b['mean']) / np.sqrt((a['sd']**2 + b['sd']**2) / 400)  # rough MC error with ESS ~400
print('pair means: max abs diff %.4f, mean abs diff %.4f, mean sd %.4f, |z|>3 share (ESS 400 assumed) %.3f' % (np.abs(a['mean']-b['mean']).max(), np.abs(a['mean']-b['mean']).mean(), a['sd'].mean(), (np.abs(z) > 3).mean()))
print('pair sds: ratio median %.3f' % np.median(b['sd'] / a['sd']))
