"""The report's page geometry and fonts, shared by the sections (image sizes in the HTML) and the PDF writer
(margins, stylesheet). No Qt."""

FONT = "DejaVu Sans"
MONO = "DejaVu Sans Mono"
CSS_PX_PER_MM = 96 / 25.4             # QTextDocument lengths (margins, image sizes) are 96-dpi pixels
PAGE_MARGINS_MM = dict(left=18.0, right=18.0, top=22.0, bottom=20.0)
BODY_WIDTH_MM = 210.0 - PAGE_MARGINS_MM["left"] - PAGE_MARGINS_MM["right"]    # A4
