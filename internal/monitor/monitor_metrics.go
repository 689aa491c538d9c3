package monitor

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the monitor's own: firings, bans, drops. Labels are detector
// and subscriber names, a closed set.
type metrics struct {
	firings       *prometheus.CounterVec
	bans          *prometheus.CounterVec
	dropped       *prometheus.CounterVec
	webhookFailed prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, m *Monitor) (*metrics, error) {
	mt := &metrics{
		firings: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gatehouse_detector_firings_total",
			Help: "Detector firings, by detector."}, []string{"detector"}),
		bans: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gatehouse_detector_bans_total",
			Help: "Bans made by detectors, by detector."}, []string{"detector"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gatehouse_monitor_events_dropped_total",
			Help: "Events dropped because a bus subscriber's queue was full, by subscriber."}, []string{"sink"}),
		webhookFailed: prometheus.NewCounter(prometheus.CounterOpts{Name: "gatehouse_monitor_webhook_events_failed_total",
			Help: "Events the events webhook did not accept after retries."}),
	}
	if reg == nil {
		return mt, nil
	}
	overflow := prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "gatehouse_monitor_detector_overflow_total",
		Help: "Events ignored because a detector already tracked its maximum number of subjects."}, func() float64 {
		var n int64
		for _, d := range m.detectors {
			if r, ok := d.(*rule); ok {
				n += r.overflow.Load()
			}
		}
		return float64(n)
	})
	for _, c := range []prometheus.Collector{mt.firings, mt.bans, mt.dropped, mt.webhookFailed, overflow} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return mt, nil
}

// AlertMetrics count alerts and their deliveries (hooks for alert.Options).
type AlertMetrics struct {
	alerts     prometheus.Counter
	deliveries *prometheus.CounterVec
	dropped    *prometheus.CounterVec
}

// NewAlertMetrics registers the alert metrics on reg.
func NewAlertMetrics(reg prometheus.Registerer) (*AlertMetrics, error) {
	a := &AlertMetrics{
		alerts: prometheus.NewCounter(prometheus.CounterOpts{Name: "gatehouse_alerts_total", Help: "Alerts raised (after grouping)."}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gatehouse_alert_deliveries_total",
			Help: "Alert delivery attempts by sink and outcome (delivered, retried, failed)."}, []string{"sink", "outcome"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gatehouse_alerts_dropped_total",
			Help: "Firings or alerts dropped, by reason (queue_full, rate_limited)."}, []string{"reason"}),
	}
	for _, c := range []prometheus.Collector{a.alerts, a.deliveries, a.dropped} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// Alert counts one alert raised.
func (a *AlertMetrics) Alert() { a.alerts.Inc() }

// Delivery counts one delivery outcome.
func (a *AlertMetrics) Delivery(sink, outcome string) {
	a.deliveries.WithLabelValues(sink, outcome).Inc()
}

// Drop counts one dropped firing or alert.
func (a *AlertMetrics) Drop(reason string) { a.dropped.WithLabelValues(reason).Inc() }

// RegisterBans adds the gatehouse_bans_active gauge, read from active at scrape time.
func RegisterBans(reg prometheus.Registerer, active func() int) error {
	return reg.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "gatehouse_bans_active",
		Help: "Bans in force known to this replica (detector and operator bans)."}, func() float64 { return float64(active()) }))
}
