"""The sample records of ivmtr.md section 5, shared by the unit tests: as bytes on the wire
(``PIECE_JSON``, ``LDE_JSON``) and parsed (``PIECE``, ``LDE``)."""

from __future__ import annotations

import json
from typing import Any

PIECE_JSON = (
    b'{"imb":"0004069951599001910222082810103","imbTrackingCode":"00040699515990019102",'
    b'"imbStid":"040","imbMid":"699515","imbSerialNumber":"990019102",'
    b'"imbRoutingCode":"22082810103","routingCodeImbMatchingPortion":"22082810103",'
    b'"handlingEventType":"A","handlingEventTypeDescription":"Actual",'
    b'"scanDatetime":"2016-01-22 22:29:53-05:00","scanEventCode":"918",'
    b'"mailPhase":"Phase 3c - Destination Sequenced Carrier Sortation","machineName":"DBCS-016",'
    b'"machineId":"016","scanFacilityName":"MERRIFIELD","scanFacilityCity":"Merrifield",'
    b'"scanFacilityState":"VA","scanFacilityZip":"22116","scanLocaleKey":"X27222",'
    b'"edocJobId":"J123456","edocSubmitterCrid":"4614860","mailClassDescription":"First Class",'
    b'"mailShapeDescription":"Letter","pieceId":"2f2980d0-1086-11e6-a904-e58664760ec6",'
    b'"predictedDeliveryDate":"2016-01-22","startTheClockDate":"2016-01-21"}'
)
LDE_JSON = (
    b'{"imb":"0004069951599001910222082810103","handlingEventType":"L",'
    b'"handlingEventTypeDescription":"Logical","scanEventCode":"517",'
    b'"scanDatetime":"2016-01-23 11:05:00-05:00","mailPhase":"Phase 4c - Delivery",'
    b'"scanFacilityZip":"22082","ldeDeliveryMode":"On-Street","ldeInventoryMethod":"LPO 918",'
    b'"ldeTriggerMethod":"ZIP+4 Entry"}'
)

PIECE: dict[str, Any] = json.loads(PIECE_JSON)
LDE: dict[str, Any] = json.loads(LDE_JSON)
