// The protocol's error codes, segmentation and number rules come from SMSCore; users of this module get them too.
@_exported import SMSCore
