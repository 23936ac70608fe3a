package injection

import (
	"strings"
	"testing"
)

// prompt4KB is a realistic long prompt: instructions plus a pasted report.
var prompt4KB = func() string {
	s := `Hi! I'm preparing the quarterly update for our regional operations team and I would like your help turning my rough notes into a clear, friendly summary of about 400 words. Please keep the tone professional but warm, use short paragraphs, and end with three concrete action items. Here are my notes, copied from our shared document:

Warehouse throughput rose by 12% compared with the previous quarter, mainly because the new scanning stations went live in week 3 and the night shift was extended by two hours. Returns processing is still slow: the average return takes 4.5 days from arrival to refund, against a target of 3 days. The main bottleneck is manual inspection of electronics, where only two people are trained. We started cross-training four more colleagues in May; two have finished and two will finish in early July.

Customer satisfaction (CSAT) for deliveries stayed flat at 4.2 out of 5. Complaints about late deliveries dropped by a third after we switched the carrier for the northern routes, but complaints about damaged packaging increased, mostly for fragile kitchenware. The packaging team suggests double-walled boxes for that category, which would add roughly 30 cents per parcel. We need a decision on this before the autumn peak season.

Staffing: we hired six seasonal workers and lost two permanent staff, one to retirement and one who moved abroad. Sick leave was lower than last year. The safety audit in April found no major issues; two minor ones (a blocked fire exit during a delivery and missing signage near the loading dock) were fixed the same week. Everyone completed the annual forklift refresher course.

Budget: we are 3% under budget overall. Energy costs were higher than planned because of the heat wave in June, when the cooling system ran around the clock, but this was offset by lower overtime. The IT team asks for a small additional budget to replace eight old handheld scanners that keep losing their Wi-Fi connection.

Projects: the pilot for electric delivery vans in the city centre is going well. The three vans covered 9,400 km without breakdowns and the drivers like them, although charging takes longer than expected when the depot chargers are shared. We want to propose extending the pilot to six vans next year and installing two more fast chargers. The new shift planning tool is delayed because the vendor had problems with the integration; the new go-live date is the first week of September.

Could you also suggest a short, catchy title for the update and point out anything in my notes that sounds unclear or that a senior manager might question? If some numbers look inconsistent, please tell me rather than guessing. Thanks a lot, and feel free to reorder the sections if it reads better. `
	for len(s) < 4096 {
		s += "Please also keep in mind that the update will be read on phones, so avoid wide tables. "
	}
	return s[:4096]
}()

const prompt200 = "Can you help me write a short thank-you email to my colleague Maria, who covered my shifts last week while I was sick? Keep it warm and under 100 words, and mention the team lunch on Friday."

func BenchmarkScore4KB(b *testing.B) {
	d := New()
	text := []byte(prompt4KB)
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		d.Score(text)
	}
}

func BenchmarkScore200B(b *testing.B) {
	d := New()
	text := []byte(prompt200)
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		d.Score(text)
	}
}

func BenchmarkScoreUnicode4KB(b *testing.B) {
	d := New()
	text := []byte(strings.Repeat("Bitte fasse den folgenden Bericht über die Lagerlogistik zusammen. Привет, как дела? 今日はいい天気ですね。", 40)[:4096])
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		d.Score(text)
	}
}
