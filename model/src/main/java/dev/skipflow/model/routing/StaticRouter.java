package dev.skipflow.model.routing;

/**
 * FTP's static router: each block keeps the first token, then the most recent ones, up to its schedule's
 * share. A decoding token is always the most recent, so decode runs densely.
 */
public final class StaticRouter implements TokenRouter {

    private final SparsitySchedule schedule;

    public StaticRouter(SparsitySchedule schedule) {
        this.schedule = schedule;
    }

    @Override
    public int[] keepPrefill(int layer, int[] positions) {
        int n = positions.length;
        int keep = schedule.keep(layer, n);
        if (keep >= n) {
            return TokenRouter.all(n);
        }
        int[] rows = new int[keep];
        int at = 0;
        if (positions[0] == 0) {
            rows[at++] = 0; // the first token (attention sink) stays
        }
        for (int i = n - (keep - at); i < n; i++) {
            rows[at++] = i;
        }
        return rows;
    }

    @Override
    public String describe() {
        return "static " + schedule;
    }
}
