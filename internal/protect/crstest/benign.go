package crstest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
)

// The benign corpus: realistic mobile-API traffic, deterministic. Every
// fragment below was written by hand to look like what real users type: names
// with apostrophes and accents, addresses, markdown, URLs, e-mails, prices,
// punctuation-heavy prose. Requests combine them into JSON CRUD bodies and
// query strings.
var (
	names = []string{
		"Siobhán O'Brien", "Patrick D'Arcy", "Zoë Müller-Lüdenscheidt", "José Ángel García", "Mary-Kate O'Neill",
		"Nguyễn Thị Minh Khai", "Jean-Luc D'Amboise", "Ciarán Ó Súilleabháin", "Aisha Al-Farsi", "Renée L'Estrange",
		"Tomás O'Reilly", "Björn Ødegård", "Chloé d'Alembert", "Dr. Amara N'Diaye", "Li Wei (李伟)",
	}
	streets = []string{
		"Flat 4, 27 St John's Road", "1600 Amphitheatre Pkwy, Bldg. 40", "12 Rue de l'Église", "Apt. 5B, 221 Baker St.",
		"Unit 9, Cambridge Science Park", "Calle de Alcalá, 48, 3º izq.", "Hauptstraße 5 / Hinterhaus", "PO Box 1042",
		"45 O'Connell Street Upper", "Lot 7 & 8, Kings Cross Rd",
	}
	cities = []string{"Cambridge", "Dublin", "Paris", "Köln", "São Paulo", "Montréal", "Kraków", "Zürich", "Hồ Chí Minh City", "L'Aquila"}
	texts  = []string{
		"Don't forget: Mum's birthday is on the 14th — book the table at O'Malley's for 7pm.",
		"## Shopping\n- milk (2 L)\n- eggs x12\n- *good* butter\n- bread from [the bakery](https://bakery.example/menu)",
		"Meeting notes: we'll ship v2.3 once QA signs off; Bob's PR #482 needs a rebase. See https://git.example.com/org/app/pull/482",
		"Call Dr. Smith's office at +44 20 7946 0958 or email reception@clinic.example.org if the appointment moves.",
		"It's 50% off until Friday — use code SPRING-50 at checkout (min. spend £20).",
		"I can't believe it's already December! Let's plan the trip: flights ~€240 each, hotel 3 nights.",
		"Recipe: 200g flour, 2 eggs, 1/2 cup sugar; bake at 180°C for 25–30 min. Let it cool before icing!",
		"> \"The best way out is always through.\" — Robert Frost\n\nAlso read: *The Road Not Taken*.",
		"TODO: renew passport (expires 2027-03-01), update the address on the car's registration, ask about the O'Hare layover.",
		"The kids' school play is at 6:30; Ms. O'Connor said parents should arrive 15 min early & bring a chair.",
		"Password manager tip from IT: use a passphrase, not your dog's name :)",
		"Review: 4/5 stars. Great coffee, friendly staff, but the Wi-Fi kept dropping. Would come back for the croissants.",
		"Quarterly numbers: revenue +12.4%, churn 2.1%, NPS 48. Next review on 2026-12-15 at 10:00 (UTC).",
		"Packing list for Zürich: passport, adapters (type J), warm coat, the book Anna lent me, chargers.",
		"Feedback on the new app: the 'Save' button is hard to find on small screens; maybe move it next to 'Cancel'?",
		"Meet at the corner of 5th & Main, then walk to Joe's Diner — they've got the best pancakes in town.",
		"Can you select the best photos from the trip and drop them in our shared album by Sunday?",
		"Update: the order was delivered to the wrong address (No. 25 instead of 27). Neighbour kept it safe.",
		"Bullet journal:\n1. Exercise 30 min\n2. Read 20 pages\n3. Call grandma\n4. Water the plants",
		"Link for the webinar: https://events.example.net/2026/api-security?utm_source=app&utm_medium=note",
	}
	queries = []string{
		"O'Brien", "dentist appointment", "café", "rock 'n' roll", "5th & Main", "50% off", "C++ tutorial",
		"what's new", "Zürich trip", "d'Arcy", "birthday 14th", "recipe: pancakes", "\"exact phrase\"", "north-east",
		"2026-12-15", "user@example.com", "#482", "São Paulo", "mother's day", "price < 20",
	}
)

// Request is one benign request.
type Request struct {
	Name    string
	Request *http.Request
	Body    []byte
}

// Benign returns the benign corpus: n requests (n ≥ 200 is the documented
// size), a deterministic mix of note, order, profile and review writes and
// search reads.
func Benign(n int) []Request {
	out := make([]Request, 0, n)
	for i := range n {
		name := names[i%len(names)]
		text := texts[i%len(texts)]
		var (
			method, target string
			body           any
		)
		switch i % 6 {
		case 0:
			method, target = "POST", "/v1/notes"
			body = map[string]any{"title": fmt.Sprintf("Note %d for %s", i, name), "body": text}
		case 1:
			method, target = "PATCH", "/v2/customers/me"
			body = map[string]any{"name": name, "phone": "+44 1223 555 01" + strconv.Itoa(10+i%90), "marketing_opt_in": i%2 == 0,
				"preferences": map[string]any{"language": "en-GB", "dietary": []string{"vegetarian", "nut_free"}[:1+i%2]}}
		case 2:
			method, target = "POST", "/v2/customers/me/addresses"
			body = map[string]any{"label": "Home", "name": name, "line1": streets[i%len(streets)], "city": cities[i%len(cities)],
				"postcode": "CB1 2AB", "country": "GB", "instructions": text, "geo": map[string]any{"lat": 52.2053 + float64(i)/1000, "lon": 0.1218}}
		case 3:
			method, target = "POST", "/v2/products/BAK-2231/reviews"
			body = map[string]any{"rating": 1 + i%5, "title": "Review by " + name, "text": text}
		case 4:
			method, target = "POST", "/v2/orders"
			body = map[string]any{
				"items":            []any{map[string]any{"sku": "GRO-10021", "quantity": 1 + i%5, "note": "Ripe ones, please"}, map[string]any{"sku": "DAI-88120", "quantity": 2}},
				"shipping_address": map[string]any{"name": name, "line1": streets[(i+3)%len(streets)], "city": cities[(i+1)%len(cities)], "postcode": "D02 X285", "country": "IE"},
				"delivery":         map[string]any{"method": "standard", "leave_at_door": true},
				"gift_message":     text,
				"metadata":         map[string]any{"app_version": "4.12.1", "referrer": "https://blog.shop.example/recipes?page=" + strconv.Itoa(i)},
			}
		case 5:
			q := queries[i%len(queries)]
			method, target = "GET", "/v1/notes/search?q="+url.QueryEscape(q)+"&limit="+strconv.Itoa(10+i%40)
		}
		var raw []byte
		if body != nil {
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			_ = enc.Encode(body)
			raw = bytes.TrimSpace(buf.Bytes())
		}
		u, _ := url.ParseRequestURI(target)
		r := &http.Request{Method: method, URL: u, RequestURI: target, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Host: "api.example.com", RemoteAddr: "198.51.100.7:51000", Header: http.Header{
				"User-Agent":      {"NotesApp/4.12.1 (iPhone; iOS 18.1; Scale/3.00)"},
				"Accept":          {"application/json"},
				"Accept-Language": {"en-GB,en;q=0.9"},
				"Authorization":   {"Bearer eyJhbGciOiJFUzI1NiIsImtpZCI6IjIwMjYtMTEifQ.eyJzdWIiOiJ1MSIsImV4cCI6MTc5NTAwMDAwMH0.c2ln"},
			}}
		if raw != nil {
			r.Header.Set("Content-Type", "application/json")
			r.Header.Set("Content-Length", strconv.Itoa(len(raw)))
			r.ContentLength = int64(len(raw))
		}
		out = append(out, Request{Name: fmt.Sprintf("%03d %s %s", i, method, u.Path), Request: r, Body: raw})
	}
	return out
}
