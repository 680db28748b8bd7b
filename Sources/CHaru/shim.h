// libharu 2.3.0 (Debian libhpdf-dev) ships no pkg-config file: the header is on the default include path and the
// module map links libhpdf. hpdf_doc.h and hpdf_fontdef.h come through hpdf.h; InvoicePDF uses
// HPDF_Doc_FindFontDef and HPDF_TTFontDef_GetGlyphid from them to tell which characters a font has.
#include <hpdf.h>
