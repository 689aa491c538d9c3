// Package dashboard is the operators' web UI on the admin listener
// (/dashboard/): sign-in with an admin account, live charts of requests,
// denials and rate-limited calls, alerts, bans (with unban), the event log,
// users and their sessions (with revoke), and key and certificate status.
//
// Its assets are embedded (go:embed): plain HTML, one small vanilla-JS file and
// CSS, charts drawn as inline SVG — nothing is fetched from another origin at
// run time, and the Content-Security-Policy forbids it. The page reads and
// changes state only through the admin API (package adminapi), which
// authenticates the session cookie and checks the CSRF token.
//
// It must never render data as HTML (event details, user agents and reasons
// are attacker-controlled: the script only sets textContent), never admit an
// account without the admin role, and never reveal why a sign-in failed.
package dashboard
