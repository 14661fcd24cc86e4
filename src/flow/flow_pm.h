/* Particle-mesh attention for the flows (attnflow/pm.h): the alternative to
 * the dense kernel that af_flow_alloc selects with pm_tol > 0. Kept apart
 * from flow.c (a few hooks call in) so that it can move behind a backend
 * layer as one piece. */
#ifndef AF_FLOW_PM_H
#define AF_FLOW_PM_H

#include "attnflow/flow.h"

typedef struct af_flow_pm af_flow_pm;

/* AF_SUCCESS or the reason these parameters cannot use the PM backend. */
af_status af_flow_pm_check(const af_flow_params *p);
af_flow_pm *af_flow_pm_alloc(const af_flow_params *p);
void af_flow_pm_free(af_flow_pm *pm);
/* KX (n x d) = K(X) X at integrator stage `stage` (-1: none) and time t;
 * counts evaluations and Sinkhorn iterations in stats. */
af_status af_flow_pm_attend(af_flow_pm *pm, const double *X, int stage, double t, double *KX,
                            af_flow_stats *stats);
void af_flow_pm_reset(af_flow_pm *pm);
void af_flow_pm_get_info(const af_flow_pm *pm, af_pm_info *info);

#endif
